"""Feature models on a real tritonserver (python backend, from the nvidia-pytriton wheel): rows checked by the client,
whole batches run by the server's encoder, vectors equal to in-process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import embedrt
from embedrt.errors import InputError
from embedrt.export.features.exporter import export_module
from embedrt.triton.client import TritonEmbedder
from embedrt.triton.repository import build_repository
from embedrt.triton.server import TritonServer
from feature_models import BagModel, bag_rows
from triton_repos import free_ports, parse_config

from two_tower.data import make_interactions  # noqa: E402 (feature_models puts it on sys.path)
from two_tower.model import UserTower

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("pytriton")
pytestmark = [pytest.mark.triton, pytest.mark.slow]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("features-triton")
    torch.manual_seed(0)
    data = make_interactions()
    user = export_module(UserTower(), tmp / "user", data.user_rows(np.arange(16)))
    bag = export_module(BagModel(), tmp / "bag", bag_rows())
    return user, bag, data


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    user, bag, _ = exports
    repo = build_repository([user, bag], tmp_path_factory.mktemp("features-triton") / "repo")
    http, grpc, metrics = free_ports(3)
    server = TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics).start()
    yield server
    server.stop()


def test_the_encoder_config_takes_whole_batches(server):
    config = parse_config(server.repository / "user_encoder" / "config.pbtxt")
    assert config.max_batch_size == 0
    assert {i.name: list(i.dims) for i in config.input} == {"user_id": [-1], "history": [-1], "history_offsets": [-1], "age": [-1], "activity": [-1]}


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_rows_through_triton_equal_in_process(server, exports, protocol):
    user, bag, data = exports
    url = server.http_url if protocol == "http" else server.grpc_url
    rows = data.user_rows(np.arange(300))
    with TritonEmbedder(url, "user", protocol, path=user, max_batch_size=128) as remote:
        np.testing.assert_allclose(remote.embed(rows), embedrt.load(user, max_batch_size=128).embed(rows), atol=1e-6)  # same batches
    many_empty = bag_rows(50, seed=4)
    many_empty["history"] = [h if i % 3 == 0 else np.zeros(0, dtype=np.int64) for i, h in enumerate(many_empty["history"])]
    with TritonEmbedder(url, "bag", protocol, path=bag) as remote:  # fewer ids than rows: the batch is the offsets'
        np.testing.assert_allclose(remote.embed(many_empty), embedrt.load(bag).embed(many_empty), atol=1e-6)


def test_bad_rows_are_refused_by_the_client_naming_column_and_row(server, exports):
    user, _, data = exports
    rows = data.user_rows(np.arange(3))
    rows["history"] = [[1], [2, 600], []]
    with TritonEmbedder(server.http_url, "user", path=user) as remote:
        with pytest.raises(InputError, match=r"column 'history' row 1: id 600 is outside 0 \.\. 499"):
            remote.embed(rows)
