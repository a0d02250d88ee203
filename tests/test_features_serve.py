"""`embedrt serve` with a feature model over real HTTP: POST /embed_records rows in, vectors equal to in-process out."""

from __future__ import annotations

import base64
import threading

import httpx
import numpy as np
import pytest
import torch

import embedrt
from embedrt.export.features.exporter import export_module
from feature_models import EXAMPLES  # noqa: F401 (puts examples/ on sys.path)
from tests.serve_server import start_server

from two_tower.data import make_interactions
from two_tower.model import UserTower


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    data = make_interactions()
    return export_module(UserTower(), tmp_path_factory.mktemp("serve") / "user", data.user_rows(np.arange(16))), data


@pytest.fixture(scope="module")
def server(exported, tmp_path_factory):
    running = start_server([(exported[0], "user")], tmp_path_factory.mktemp("serve") / "serve.log", "--max-inputs", "64")
    yield running
    assert running.stop() == 0, running.output()


def records(data, idx) -> list[dict]:
    rows = data.user_rows(np.asarray(idx))
    return [{"user_id": int(rows["user_id"][k]), "history": rows["history"][k].tolist(), "age": float(rows["age"][k]),
             "activity": float(rows["activity"][k])} for k in range(len(idx))]


def test_records_in_vectors_out_equal_in_process(server, exported):
    model, data = exported
    reply = httpx.post(f"{server.url}/embed_records", json={"model": "user", "records": records(data, range(40))}, timeout=60)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "user" and [d["index"] for d in body["data"]] == list(range(40))
    expected = embedrt.load(model).embed(data.user_rows(np.arange(40)))
    np.testing.assert_allclose(np.array([d["embedding"] for d in body["data"]], dtype=np.float32), expected, atol=1e-6)


def test_base64_vectors_are_little_endian_float32(server, exported):
    model, data = exported
    reply = httpx.post(f"{server.url}/embed_records", json={"records": records(data, [5]), "encoding_format": "base64"}, timeout=60)
    vector = np.frombuffer(base64.b64decode(reply.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, embedrt.load(model).embed(data.user_rows(np.array([5])))[0], atol=1e-6)


def test_a_bad_row_is_400_naming_column_and_row(server, exported):
    _, data = exported
    bad = records(data, range(3))
    bad[2]["history"] = [1, 2, 7000]
    reply = httpx.post(f"{server.url}/embed_records", json={"records": bad}, timeout=60)
    assert reply.status_code == 400
    assert "column 'history' row 2: id 7000 is outside 0 .. 499" in reply.json()["error"]["message"]


@pytest.mark.parametrize("body, status, message", [
    ({"records": []}, 400, "records must be a non-empty list"),
    ({"records": [1]}, 400, "records[0] is a int"),
    ({"records": [{}] * 65}, 413, "more than this server's limit of 64"),
    ({"records": [{"user_id": 1}], "extra": 1}, 400, "unknown field 'extra'"),
])
def test_malformed_bodies_are_refused_naming_the_field(server, body, status, message):
    reply = httpx.post(f"{server.url}/embed_records", json=body, timeout=60)
    assert reply.status_code == status and message in reply.json()["error"]["message"]


def test_the_text_route_refuses_a_feature_model(server):
    reply = httpx.post(f"{server.url}/v1/embeddings", json={"model": "user", "input": ["hello"]}, timeout=60)
    assert reply.status_code == 400 and "is a feature model: POST its rows to /embed_records" in reply.json()["error"]["message"]


def test_eight_concurrent_clients_get_their_own_rows_vectors(server, exported):
    model, data = exported
    expected = embedrt.load(model).embed(data.user_rows())
    results: dict[int, np.ndarray] = {}

    def client(i: int) -> None:
        idx = list(range(i * 30, i * 30 + 5 + i))
        reply = httpx.post(f"{server.url}/embed_records", json={"records": records(data, idx)}, timeout=60)
        results[i] = (idx, np.array([d["embedding"] for d in reply.json()["data"]], dtype=np.float32))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(results) == list(range(8))
    for idx, vectors in results.values():
        np.testing.assert_allclose(vectors, expected[idx], atol=1e-5)
