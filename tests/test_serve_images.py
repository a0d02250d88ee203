"""`embedrt serve` with an image export beside a text one: base64 and data-URL images on /v1/embeddings."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest

from tests.image_samples import encoded, photos
from tests.serve_server import start_server


@pytest.fixture(scope="module")
def server(minilm_dir, resnet18_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-images") / "serve.log"
    running = start_server([(minilm_dir, "default"), (resnet18_dir, "resnet")], log)
    yield running
    assert running.stop() == 0, running.output()


def test_base64_and_data_url_images_equal_in_process_embed(server, resnet18, minilm):
    files = [encoded(p) for p in photos()[:2]]
    inputs = [base64.b64encode(files[0]).decode(), "data:image/png;base64," + base64.b64encode(files[1]).decode()]
    body = httpx.post(f"{server.url}/v1/embeddings", json={"model": "resnet", "input": inputs}, timeout=120).json()
    served = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert np.abs(served - resnet18.embed(files)).max() < 1e-5
    assert body["model"] == "resnet" and body["usage"]["prompt_tokens"] == 0
    text = httpx.post(f"{server.url}/v1/embeddings", json={"model": "default", "input": ["still text"]}, timeout=60).json()
    assert np.abs(np.array(text["data"][0]["embedding"]) - minilm.embed(["still text"])[0]).max() < 1e-6


@pytest.mark.parametrize("item,message", [
    ("not base64 at all!", "input[0] is not valid base64"),
    ("data:image/png,abc", "input[0] is a data URL without ';base64,'"),
    (base64.b64encode(b"plain bytes, no image").decode(), "images[0]"),
])
def test_bad_images_are_400_naming_the_input(server, item, message):
    response = httpx.post(f"{server.url}/v1/embeddings", json={"model": "resnet", "input": [item]}, timeout=60)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_tei_routes_refuse_an_image_model(server):
    response = httpx.post(f"{server.url}/embed", json={"model": "resnet", "inputs": ["x"]}, timeout=60)
    assert response.status_code == 400 and "image model" in response.json()["error"]["message"]


def test_openai_without_model_is_400_when_several_are_served(server):
    response = httpx.post(f"{server.url}/v1/embeddings", json={"input": ["x"]}, timeout=60)
    assert response.status_code == 400 and "default, resnet" in response.json()["error"]["message"]
