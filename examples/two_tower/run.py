"""The worked example end to end: train two towers, export both with embedrt, embed every item in bulk, recommend, evaluate.

    python examples/two_tower/run.py [--out DIR] [--precision fp32|int8]

recall@10 on the held-out interactions from embedrt's vectors equals PyTorch's (to the 4th decimal),
and both beat recommending the most popular items.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `two_tower` importable when run as a script

import numpy as np
import torch

import embedrt
from embedrt.export.features.exporter import export_module
from two_tower.data import N_ITEMS, make_interactions
from two_tower.recommend import popularity_scores, recall_at_k, scores, top_k
from two_tower.train import item_vectors, train, user_vectors


def run(out: Path, *, precision: str = "fp32", seed: int = 0) -> dict:
    data = make_interactions(seed)
    start = time.perf_counter()
    users, items = train(data, seed=seed)
    trained = time.perf_counter() - start
    # The few rows each export reads its float features' statistics from; the towers declare their columns.
    user_dir = export_module(users, out / "user_tower", data.user_rows(np.arange(64)), precision=precision, overwrite=True)
    item_dir = export_module(items, out / "item_tower", data.item_rows(), precision=precision, overwrite=True)

    user_embedder, item_embedder = embedrt.load(user_dir), embedrt.load(item_dir)
    item_vecs = item_embedder.embed(data.item_rows())  # every item, in batches of up to max_batch_size rows
    user_vecs = user_embedder.embed(data.user_rows())
    with torch.no_grad():
        torch_users, torch_items = user_vectors(users, data.user_rows()).numpy(), item_vectors(items, data.item_rows()).numpy()
    return {
        "train_seconds": trained,
        "top10_user0": top_k(user_vecs[:1], item_vecs, data.train[:1])[0].tolist(),
        "recall@10_embedrt": recall_at_k(scores(user_vecs, item_vecs, data.train), data.test),
        "recall@10_pytorch": recall_at_k(scores(torch_users, torch_items, data.train), data.test),
        "recall@10_popularity": recall_at_k(popularity_scores(data.train, N_ITEMS), data.test),
        "user_parity": user_embedder.manifest.parity["min_cosine"],
        "item_parity": item_embedder.manifest.parity["min_cosine"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="where the two export dirs go (default: a temporary dir)")
    parser.add_argument("--precision", choices=("fp32", "int8"), default="fp32")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run(args.out or Path(tmp), precision=args.precision)
    for name, value in figures.items():
        print(f"{name:>22}: {value:.4f}" if isinstance(value, float) else f"{name:>22}: {value}")


if __name__ == "__main__":
    main()
