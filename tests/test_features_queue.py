"""FeatureQueue: rows from many threads merged into shared batches, vectors equal to FeatureEmbedder.embed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import embedrt
from embedrt.errors import InputError
from embedrt.export.features.exporter import export_module
from embedrt.runtime.queue.features import FeatureQueue
from feature_models import PaddedModel

from two_tower.data import make_interactions  # noqa: E402 (feature_models puts it on sys.path)
from two_tower.model import UserTower


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    torch.manual_seed(0)
    data = make_interactions()
    return embedrt.load(export_module(UserTower(), tmp_path_factory.mktemp("queue") / "user", data.user_rows(np.arange(16)))), data


def test_eight_threads_get_their_own_rows_vectors(user):
    embedder, data = user
    expected = embedder.embed(data.user_rows())
    results: dict[int, np.ndarray] = {}
    with FeatureQueue(embedder, max_wait_ms=5) as queue:
        def call(k: int) -> None:
            idx = np.arange(k * 50, k * 50 + 10 + k)  # requests of different sizes
            results[k] = (idx, queue.embed(data.user_rows(idx)))

        threads = [threading.Thread(target=call, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(results) == list(range(8))
    for idx, vectors in results.values():
        np.testing.assert_allclose(vectors, expected[idx], atol=1e-5)


def test_a_bad_request_fails_alone_in_its_callers_thread(user):
    embedder, data = user
    with FeatureQueue(embedder) as queue:
        bad = data.user_rows(np.arange(3))
        bad["user_id"] = np.array([0, 1, 1000])
        with pytest.raises(InputError, match="column 'user_id' row 2: id 1000 is outside 0 .. 999"):
            queue.submit(bad)
        np.testing.assert_allclose(queue.embed(data.user_rows(np.arange(3))), embedder.embed(data.user_rows(np.arange(3))), atol=1e-6)


def test_padded_lists_of_two_requests_share_a_batch(tmp_path):
    model = PaddedModel().eval()
    embedder = embedrt.load(export_module(model, tmp_path / "padded", {"tags": [[1, 2], [3]]},
                                          columns=[{"name": "tags", "kind": "id_list", "layout": "padded"}], output="embedding"))
    with FeatureQueue(embedder, max_wait_ms=20) as queue:
        a, b = queue.submit({"tags": [[1, 2, 3, 4, 5]]}), queue.submit({"tags": [[7], []]})
        got = np.concatenate([a.result(30), b.result(30)])
    np.testing.assert_allclose(got, embedder.embed({"tags": [[1, 2, 3, 4, 5], [7], []]}), atol=1e-6)
