"""export_module: any nn.Module over named features -> a `features` export dir that passes its gate, loaded as a FeatureEmbedder."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

import embedrt
from embedrt.errors import ExportError, ParityError
from embedrt.export.features.exporter import export_module
from embedrt.runtime.features.embedder import FeatureEmbedder
from feature_models import BagModel, BakedConstant, ModuloIds, PaddedModel, bag_rows, bag_torch

from two_tower.data import N_CATEGORIES, N_ITEMS, N_USERS, make_interactions  # noqa: E402 (feature_models puts it on sys.path)
from two_tower.model import ItemTower, UserTower
from two_tower.train import item_vectors, user_vectors


@pytest.fixture(scope="module")
def data():
    return make_interactions()


@pytest.fixture(scope="module")
def towers():
    torch.manual_seed(3)
    return UserTower().eval(), ItemTower().eval()


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory, towers, data):
    return export_module(towers[0], tmp_path_factory.mktemp("features") / "user", data.user_rows(np.arange(32)))


def test_user_tower_passes_the_fp32_gate_and_equals_pytorch_on_every_user(user_dir, towers, data):
    manifest = json.loads((user_dir / "embedrt.json").read_text())
    assert manifest["modality"] == "features" and manifest["dim"] == 32
    assert manifest["parity"]["passed"] and manifest["parity"]["min_cosine"] >= 0.99999 and manifest["parity"]["n"] == 256
    embedder = embedrt.load(user_dir)
    assert isinstance(embedder, FeatureEmbedder)
    with torch.no_grad():
        expected = user_vectors(towers[0], data.user_rows()).numpy()
    got = embedder.embed(data.user_rows())
    assert got.dtype == np.float32 and got.shape == (N_USERS, 32)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_id_ranges_are_read_from_the_tables_the_ids_feed(user_dir):
    columns = {c["name"]: c for c in json.loads((user_dir / "embedrt.json").read_text())["features"]["columns"]}
    assert columns["user_id"]["num_embeddings"] == N_USERS
    assert columns["history"]["num_embeddings"] == N_ITEMS and columns["history"]["layout"] == "offsets"
    assert columns["age"]["kind"] == "float" and columns["age"]["num_embeddings"] == 0
    inputs = [t["name"] for t in json.loads((user_dir / "embedrt.json").read_text())["inputs"]]
    assert inputs == ["user_id", "history", "history_offsets", "age", "activity"]


def test_load_self_checks_the_reference_rows(user_dir):
    embedder = embedrt.load(user_dir)
    assert embedder.self_check["passed"] and embedder.self_check["n"] == 8 and embedder.self_check["min_cosine"] >= 0.99999


def test_rows_as_row_dicts_dataframe_and_arrow_table_give_the_same_vectors(user_dir, data):
    import pandas as pd
    import pyarrow as pa

    embedder = embedrt.load(user_dir)
    columns = data.user_rows(np.arange(10))
    expected = embedder.embed(columns)
    row_dicts = [{name: columns[name][i] for name in columns} for i in range(10)]
    frame = pd.DataFrame({name: list(values) for name, values in columns.items()})
    table = pa.table({"user_id": columns["user_id"], "history": [h.tolist() for h in columns["history"]],
                      "age": columns["age"], "activity": columns["activity"]})
    for rows in (row_dicts, frame, table):
        np.testing.assert_array_equal(embedder.embed(rows), expected)


def test_small_batches_give_the_vectors_of_one_batch(user_dir, data):
    rows = data.user_rows(np.arange(50))
    np.testing.assert_allclose(FeatureEmbedder(user_dir, max_batch_size=7).embed(rows), embedrt.load(user_dir).embed(rows), atol=1e-6)


def test_item_tower_int8_quantises_the_dense_layers_only_and_passes_the_int8_gate(tmp_path, towers, data):
    out = export_module(towers[1], tmp_path / "item8", data.item_rows(), precision="int8")
    manifest = json.loads((out / "embedrt.json").read_text())
    assert manifest["precision"] == "int8" and manifest["parity"]["passed"] and manifest["parity"]["min_cosine"] >= 0.99
    assert manifest["optimizations"][0] == "int8:dynamic_dense" and "int8:tables" not in manifest["optimizations"]
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "MatMulInteger" in ops and "Gemm" not in ops and "Gather" in ops  # tables stay float32 Gathers
    with torch.no_grad():
        expected = item_vectors(towers[1], data.item_rows()).numpy()
    got = embedrt.load(out).embed(data.item_rows())
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() >= 0.99 and got.shape == (N_ITEMS, 32)
    assert {c["name"]: c["num_embeddings"] for c in manifest["features"]["columns"]} == {"item_id": N_ITEMS, "category": N_CATEGORIES, "price": 0}


def test_embedding_bag_over_variable_length_histories_with_empty_rows(tmp_path):
    model = BagModel().eval()
    out = export_module(model, tmp_path / "bag", bag_rows())  # columns inferred: history + history_offsets -> id list
    columns = json.loads((out / "embedrt.json").read_text())["features"]["columns"]
    assert [(c["name"], c["kind"], c["layout"], c["shape"], c["num_embeddings"]) for c in columns] == [
        ("history", "id_list", "offsets", [], 300), ("context", "float", "", [3], 0)]
    rows = bag_rows(200, seed=7)
    rows["history"][5] = np.arange(300)  # a row longer than any in the example
    got, expected = embedrt.load(out).embed(rows), bag_torch(model, rows)
    cos = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cos.min() >= 0.99999 and np.abs(got - expected).max() < 1e-4  # running sums in float32: ~1e-5 off on long rows


def test_sum_and_mean_bags_export_as_running_sums_not_a_loop_over_rows(tmp_path):
    out = export_module(BagModel().eval(), tmp_path / "bag", bag_rows())
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert "CumSum" in ops and "Loop" not in ops and "ScatterElements" not in ops
    assert json.loads((out / "embedrt.json").read_text())["optimizations"] == ["embedding_bag:cumsum"]


def test_a_max_bag_whose_onnx_graph_breaks_on_empty_lists_is_refused_naming_the_row(tmp_path):
    model = BagModel().eval()
    model.bag.mode = "max"  # torch exports it as a Loop whose max over an empty list is not torch's 0
    with pytest.raises(ParityError, match=r"NaN or Inf for \d+ parity rows .* \(first: row 0: history=\[\], context="):
        export_module(model, tmp_path / "maxbag", bag_rows())
    assert not (tmp_path / "maxbag").exists()


def test_padded_id_lists_and_a_dict_output_picked_by_key(tmp_path):
    model = PaddedModel().eval()
    rows = {"tags": [[1, 2, 3], [], [4], list(range(1, 40))]}
    out = export_module(model, tmp_path / "padded", rows, columns=[{"name": "tags", "kind": "id_list", "layout": "padded"}], output="embedding")
    column = json.loads((out / "embedrt.json").read_text())["features"]["columns"][0]
    assert column["layout"] == "padded" and column["num_embeddings"] == 50
    embedder = embedrt.load(out)
    for row in rows["tags"]:  # alone (no padding) and in a batch padded to 39 give the same vector
        with torch.no_grad():
            expected = model(torch.tensor([row or [0]], dtype=torch.int64))["embedding"].numpy()
        np.testing.assert_allclose(embedder.embed({"tags": [row]}), expected, atol=1e-6)
    np.testing.assert_allclose(embedder.embed(rows)[0], embedder.embed({"tags": [[1, 2, 3]]})[0], atol=1e-6)


def test_a_dict_output_without_its_key_is_refused_naming_the_keys(tmp_path):
    with pytest.raises(ExportError, match=r"forward returned a dict with keys \['embedding', 'logits'\]; pass output=KEY"):
        export_module(PaddedModel(), tmp_path / "nokey", {"tags": [[1, 2]]}, columns=[{"name": "tags", "kind": "id_list", "layout": "padded"}])


def test_an_id_that_reaches_no_table_unchanged_needs_a_declared_range(tmp_path):
    example = {"ids": np.arange(20, dtype=np.int64)}
    with pytest.raises(ExportError, match="input 'ids'.*declare its num_embeddings"):
        export_module(ModuloIds(), tmp_path / "modulo", example)
    assert not (tmp_path / "modulo").exists()
    out = export_module(ModuloIds(), tmp_path / "modulo", example, columns=[{"name": "ids", "kind": "id", "num_embeddings": 1000}])
    assert json.loads((out / "embedrt.json").read_text())["features"]["columns"][0]["num_embeddings"] == 1000


def test_a_declared_range_wider_than_the_table_is_refused(tmp_path):
    with pytest.raises(ExportError, match="declared num_embeddings 400 but its table has 300 rows"):
        export_module(BagModel(), tmp_path / "wide", bag_rows(), columns=[
            {"name": "history", "kind": "id_list", "num_embeddings": 400}, {"name": "context", "kind": "float", "shape": [3]}])


def test_a_graph_that_misses_the_gate_writes_nothing(tmp_path):
    example = {"x": np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)}
    with pytest.raises(ParityError, match="fp32 export failed its parity gate"):
        export_module(BakedConstant(), tmp_path / "branch", example)
    assert not (tmp_path / "branch").exists() and list(tmp_path.iterdir()) == []


def test_loading_and_embedding_rows_never_imports_torch(user_dir):
    import subprocess
    import sys

    code = (
        "import sys, embedrt\n"
        f"e = embedrt.load({str(user_dir)!r})\n"
        "e.embed({'user_id': [1], 'history': [[1, 2]], 'age': [0.1], 'activity': [1.0]})\n"
        "from embedrt.runtime.queue.features import FeatureQueue\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
