"""Feature rows in bulk (embedrt embed's job): .jsonl and .parquet rows -> Parquet vectors equal to FeatureEmbedder.embed."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import embedrt
from embedrt.cli import build_parser
from embedrt.commands.embed_features import run_features
from embedrt.errors import InputError
from embedrt.export.features.exporter import export_module
from feature_models import EXAMPLES  # noqa: F401 (puts examples/ on sys.path)

from two_tower.data import make_interactions
from two_tower.model import UserTower


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    torch.manual_seed(0)
    data = make_interactions()
    out = export_module(UserTower(), tmp_path_factory.mktemp("bulk") / "user", data.user_rows(np.arange(16)))
    return out, data


def user_records(data, n: int) -> list[dict]:
    rows = data.user_rows(np.arange(n))
    return [{"key": f"u{i}", "user_id": int(rows["user_id"][i]), "history": rows["history"][i].tolist(), "age": float(rows["age"][i]),
             "activity": float(rows["activity"][i]), "name": "not a model column"} for i in range(n)]


def embed(*argv: str) -> int:
    return run_features(build_parser("embed").parse_args(["embed", *argv, "--quiet"]))


def test_jsonl_rows_in_chunks_give_the_vectors_of_one_call(user, tmp_path):
    model, data = user
    records = user_records(data, 250)
    (tmp_path / "users.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert embed(str(model), "--input", str(tmp_path / "users.jsonl"), "--output", str(tmp_path / "out.parquet"),
                 "--id-column", "key", "--chunk-rows", "64") == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("key").to_pylist() == [r["key"] for r in records]
    expected = embedrt.load(model).embed(data.user_rows(np.arange(250)))
    np.testing.assert_allclose(np.array(table.column("embedding").to_pylist(), dtype=np.float32), expected, atol=1e-6)


def test_parquet_rows_with_a_bad_one_skipped_and_named(user, tmp_path):
    model, data = user
    records = user_records(data, 40)
    records[7]["user_id"] = 99999
    pq.write_table(pa.Table.from_pylist(records), tmp_path / "users.parquet")
    assert embed(str(model), "--input", str(tmp_path / "users.parquet"), "--output", str(tmp_path / "out.parquet"), "--on-error", "skip") == 0
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.column("id").to_pylist() == [i for i in range(40) if i != 7]
    skipped = [json.loads(line) for line in (tmp_path / "out.parquet.skipped.jsonl").read_text().splitlines()]
    assert len(skipped) == 1 and skipped[0]["row"] == 7 and "column 'user_id': id 99999 is outside 0 .. 999" in skipped[0]["reason"]
    expected = embedrt.load(model).embed(data.user_rows(np.array([i for i in range(40) if i != 7])))
    np.testing.assert_allclose(np.array(table.column("embedding").to_pylist(), dtype=np.float32), expected, atol=1e-6)


def test_a_csv_input_is_refused_before_the_model_loads(user, tmp_path):
    model, _ = user
    (tmp_path / "users.csv").write_text("user_id\n1\n")
    with pytest.raises(InputError, match=r"feature rows come from a \.jsonl or \.parquet file"):
        embed(str(model), "--input", str(tmp_path / "users.csv"), "--output", str(tmp_path / "out.parquet"))


def test_embedrt_embed_cli_takes_a_feature_model(user, tmp_path):
    import subprocess
    import sys

    model, data = user
    (tmp_path / "users.jsonl").write_text("".join(json.dumps(r) + "\n" for r in user_records(data, 5)))
    result = subprocess.run([sys.executable, "-m", "embedrt.cli", "embed", str(model), "--input", str(tmp_path / "users.jsonl"),
                             "--output", str(tmp_path / "out.npy")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), embedrt.load(model).embed(data.user_rows(np.arange(5))), atol=1e-6)
