"""examples/two_tower end to end: trained towers exported, every item embedded in bulk, recall@10 equal to PyTorch's."""

from __future__ import annotations

import feature_models  # noqa: F401 (puts examples/ on sys.path)
from two_tower.run import run


def test_two_tower_example_recall_equals_pytorch_and_beats_popularity(tmp_path):
    figures = run(tmp_path)
    assert round(figures["recall@10_embedrt"], 4) == round(figures["recall@10_pytorch"], 4)
    assert figures["recall@10_embedrt"] > figures["recall@10_popularity"] + 0.03
    assert figures["user_parity"] >= 0.99999 and figures["item_parity"] >= 0.99999
    assert len(figures["top10_user0"]) == 10 and len(set(figures["top10_user0"])) == 10
    assert (tmp_path / "user_tower" / "embedrt.json").is_file() and (tmp_path / "item_tower" / "embedrt.json").is_file()
