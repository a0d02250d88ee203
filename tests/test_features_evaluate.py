"""`embedrt evaluate USER_TOWER --documents-model ITEM_TOWER ...`: the retrieval task of a two-tower model, as the example scores it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import embedrt
from embedrt.export.features.exporter import export_module
from feature_models import EXAMPLES  # noqa: F401 (puts examples/ on sys.path)

from two_tower.data import N_ITEMS, make_interactions
from two_tower.model import ItemTower, UserTower
from two_tower.recommend import recall_at_k, scores


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def retrieval_files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    data = make_interactions()
    torch.manual_seed(1)
    users = export_module(UserTower(), tmp / "user", data.user_rows(np.arange(16)))
    items = export_module(ItemTower(), tmp / "item", data.item_rows())
    user_rows, item_rows = data.user_rows(), data.item_rows()
    write_jsonl(tmp / "users.jsonl", [{"query": f"u{u}", "user_id": u, "history": user_rows["history"][u].tolist(),
                                      "age": float(user_rows["age"][u]), "activity": float(user_rows["activity"][u])} for u in range(len(data.train))])
    write_jsonl(tmp / "items.jsonl", [{"document": f"i{i}", "item_id": i, "category": int(item_rows["category"][i]),
                                      "price": float(item_rows["price"][i])} for i in range(N_ITEMS)])
    (tmp / "heldout.csv").write_text("query,document\n" + "".join(f"u{u},i{i}\n" for u, t in enumerate(data.test) for i in t))
    (tmp / "seen.csv").write_text("query,document\n" + "".join(f"u{u},i{i}\n" for u, t in enumerate(data.train) for i in t))
    return tmp, users, items, data


def evaluate(*args):
    return subprocess.run([sys.executable, "-m", "embedrt.cli", "evaluate", *map(str, args)], capture_output=True, text=True)


def test_evaluate_two_towers_gives_the_recall_the_example_computes(retrieval_files):
    tmp, users, items, data = retrieval_files
    result = evaluate(users, "--data", tmp / "heldout.csv", "--queries", tmp / "users.jsonl", "--documents", tmp / "items.jsonl",
                      "--document-model", items, "--exclude", tmp / "seen.csv", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)[str(users)]
    user_vecs, item_vecs = embedrt.load(users).embed(data.user_rows()), embedrt.load(items).embed(data.item_rows())
    expected = recall_at_k(scores(user_vecs, item_vecs, data.train), data.test)
    assert got["queries"] == len(data.test) and got["documents"] == N_ITEMS and got["score"] == "dot"
    assert got["recall@10"] == pytest.approx(expected, abs=1e-9)


def test_evaluate_a_feature_model_needs_its_query_and_document_rows(retrieval_files):
    tmp, users, _, _ = retrieval_files
    result = evaluate(users, "--data", tmp / "heldout.csv")
    assert result.returncode == 2 and "retrieval needs --queries JSONL and --documents JSONL" in result.stderr


def test_a_relevant_pair_whose_query_has_no_row_is_named(retrieval_files, tmp_path):
    tmp, users, items, _ = retrieval_files
    (tmp_path / "data.csv").write_text("query,document\nu1,i2\nnobody,i3\n")
    result = evaluate(users, "--data", tmp_path / "data.csv", "--queries", tmp / "users.jsonl", "--documents", tmp / "items.jsonl",
                      "--document-model", items)
    assert result.returncode == 2
    assert f"--data {tmp_path / 'data.csv'}: row 2 has query 'nobody', which --queries {tmp / 'users.jsonl'} has no row for" in result.stderr
