"""`embedrt serve` over real HTTP: the openai client, TEI routes, limits, bad input, API key, metrics, concurrency."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedrt.runtime.text.pooling import pool
from embedrt.sample_text import sample_document, sample_sentences
from tests.serve_server import start_server

KEY = "test-key-3f9a"
MAX_INPUTS, MAX_CHARS, MAX_BODY = 16, 3000, 64 * 1024


@pytest.fixture(scope="module")
def server(minilm_dir, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    running = start_server([(minilm_dir, "default")], log, "--max-inputs", str(MAX_INPUTS), "--max-input-chars", str(MAX_CHARS),
                           "--max-body-bytes", str(MAX_BODY), api_key=KEY)
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
        yield client


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def test_startup_print_names_endpoints_limits_and_providers(server):
    out = server.output()
    assert "POST /v1/embeddings" in out and "GET /metrics" in out
    assert f"{MAX_INPUTS} inputs/request" in out and "API key required" in out
    assert "model 'default': text, dim 384" in out and "CPUExecutionProvider" in out


@pytest.mark.parametrize("encoding_format", ["float", "base64", None])
def test_openai_client_vectors_equal_in_process_embed(server, minilm, encoding_format):
    import openai

    texts = sample_sentences(12, seed=1)
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY)
    options = {"encoding_format": encoding_format} if encoding_format else {}  # by default the client asks for base64 and decodes it
    response = client.embeddings.create(model="default", input=texts, **options)
    rows = [d.embedding for d in sorted(response.data, key=lambda d: d.index)]
    if encoding_format == "base64":  # asked for explicitly, the client hands the strings back
        rows = [np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows]
    served = np.array(rows, dtype=np.float32)
    expected = minilm.embed(texts)
    assert served.shape == (12, 384)
    assert min_cosine(served, expected) >= 0.99999
    assert np.abs(served - expected).max() < 1e-6
    assert response.usage.prompt_tokens == int(minilm.tokenize(texts).lengths.sum())
    assert response.model == "default"


def test_base64_is_little_endian_float32(http, minilm):
    body = http.post("/v1/embeddings", json={"input": "a red bicycle", "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(body["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, minilm.embed(["a red bicycle"])[0], atol=1e-6)


def test_single_string_input_gives_one_vector(http, minilm):
    body = http.post("/v1/embeddings", json={"input": "one text", "model": "default"}).json()
    assert len(body["data"]) == 1 and body["data"][0]["index"] == 0
    np.testing.assert_allclose(body["data"][0]["embedding"], minilm.embed(["one text"])[0], atol=1e-6)


def test_dimensions_are_the_leading_ones_renormalised(http, minilm):
    body = http.post("/v1/embeddings", json={"input": ["short", "a longer sentence here"], "dimensions": 64}).json()
    served = np.array([d["embedding"] for d in body["data"]])
    full = minilm.embed(["short", "a longer sentence here"])[:, :64]
    np.testing.assert_allclose(served, full / np.linalg.norm(full, axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(served, axis=1), 1.0, atol=1e-6)


def test_token_id_input_equals_the_text(http, minilm):
    texts = ["token ids straight from the tokenizer", "second"]
    ids = [row.tolist() for row in minilm.tokenize(texts).ids]
    body = http.post("/v1/embeddings", json={"input": ids}).json()
    served = np.array([d["embedding"] for d in body["data"]])
    np.testing.assert_allclose(served, minilm.embed(texts), atol=1e-6)
    assert body["usage"]["prompt_tokens"] == sum(len(i) for i in ids)


def test_tei_embed_equals_in_process(http, minilm):
    texts = sample_sentences(5, seed=2)
    served = np.array(http.post("/embed", json={"inputs": texts}).json())
    assert min_cosine(served, minilm.embed(texts)) >= 0.99999
    np.testing.assert_allclose(served, minilm.embed(texts), atol=1e-6)
    single = http.post("/embed", json={"inputs": texts[0]}).json()
    np.testing.assert_allclose(single, minilm.embed(texts[:1]), atol=1e-6)


def test_tei_embed_normalize_false_is_the_mean_pooled_vector(http, minilm):
    text = "mean of the token vectors, not unit length"
    served = np.array(http.post("/embed", json={"inputs": [text], "normalize": False}).json())
    tokens = minilm.embed_tokens([text])[0]
    expected = pool(tokens[None], np.ones((1, len(tokens))), "mean")
    np.testing.assert_allclose(served, expected, atol=1e-5)
    assert abs(np.linalg.norm(served) - 1.0) > 1e-3


def test_tei_embed_all_equals_token_embeddings(http, minilm):
    texts = ["two words", "a few more words here"]
    served = http.post("/embed_all", json={"inputs": texts}).json()
    for got, expected in zip(served, minilm.embed_tokens(texts)):
        np.testing.assert_allclose(np.array(got), expected, atol=1e-5)


BAD_INPUTS = [
    ("/v1/embeddings", {"input": ["fine", None]}, 400, "input[1] is null, not a string"),
    ("/v1/embeddings", {"input": ["fine", 3.5]}, 400, "input[1] is float, not a string"),
    ("/v1/embeddings", {"input": []}, 400, "input is an empty list"),
    ("/v1/embeddings", {}, 400, "input is missing"),
    ("/v1/embeddings", {"input": "x", "model": "nope"}, 404, "model 'nope' is not served here; known models: default"),
    ("/v1/embeddings", {"input": "x", "dimensions": 385}, 400, "dimensions=385 is more than the 384"),
    ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 400, "encoding_format='int8'"),
    ("/v1/embeddings", {"input": [[1, 2], [99999999]]}, 400, "input[1] holds a token id that is not an int in [0, 30522)"),
    ("/v1/embeddings", ["not", "an", "object"], 400, "must be a JSON object"),
    ("/embed", {"inputs": ["ok", {"text": "no"}]}, 400, "inputs[1] is dict, not a string"),
    ("/embed", {"inputs": [sample_document(400)]}, 400, "texts[0] is longer than the model's 256 tokens"),
    ("/embed", {"inputs": ["x"], "prompt_name": "query"}, 400, "prompt_name"),
    ("/embed_all", {"inputs": []}, 400, "inputs is an empty list"),
    ("/v1/embeddings", {"input": ["x"] * (MAX_INPUTS + 1)}, 413, f"more than this server's limit of {MAX_INPUTS} per request"),
    ("/v1/embeddings", {"input": ["ok", "y" * (MAX_CHARS + 1)]}, 413, f"input[1] has {MAX_CHARS + 1} characters"),
]


@pytest.mark.parametrize("route,body,status,message", BAD_INPUTS, ids=[m[:40] for *_, m in BAD_INPUTS])
def test_bad_input_is_4xx_naming_the_input(http, route, body, status, message):
    response = http.post(route, json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in response.text


def test_truncate_false_on_openai_route_refuses_long_text_and_true_cuts_it(http, minilm):
    long_text = sample_document(400)
    refused = http.post("/v1/embeddings", json={"input": ["short", long_text], "truncate": False})
    assert refused.status_code == 400 and "texts[1] is longer than the model's 256 tokens" in refused.json()["error"]["message"]
    cut = http.post("/v1/embeddings", json={"input": [long_text]}).json()
    np.testing.assert_allclose(cut["data"][0]["embedding"], minilm.embed([long_text])[0], atol=1e-6)


def test_body_over_the_limit_is_413(http):
    response = http.post("/v1/embeddings", content=json.dumps({"input": ["z" * 1000] * 70}), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert f"limit of {MAX_BODY}" in response.json()["error"]["message"]


def test_invalid_json_is_400(http):
    response = http.post("/v1/embeddings", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}], ids=["none", "wrong", "no-bearer"])
def test_api_key_is_required_except_on_health(server, headers):
    for method, path in (("POST", "/v1/embeddings"), ("POST", "/embed"), ("GET", "/metrics"), ("GET", "/info"), ("GET", "/v1/models")):
        response = httpx.request(method, f"{server.url}{path}", json={"input": "x", "inputs": "x"}, headers=headers)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_models_and_info_describe_the_served_model(http):
    assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["default"]
    info = http.get("/info").json()
    assert info["limits"]["max_inputs"] == MAX_INPUTS
    model = info["models"][0]
    assert model["providers"] == ["CPUExecutionProvider"] and model["dim"] == 384 and model["max_length"] == 256
    assert model["manifest"]["modality"] == "text"


def _samples(http) -> dict[tuple[str, tuple], float]:
    text = http.get("/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_count_the_requests_just_made(http):
    success = ("embedrt_requests_total", (("model", "default"), ("outcome", "success"), ("route", "/embed")))
    bad = ("embedrt_requests_total", (("model", "-"), ("outcome", "bad_input"), ("route", "/embed")))
    before = _samples(http)
    for _ in range(3):
        assert http.post("/embed", json={"inputs": ["counted"]}).status_code == 200
    assert http.post("/embed", json={"inputs": [None]}).status_code == 400
    after = _samples(http)
    assert after[success] - before.get(success, 0) == 3
    assert after[bad] - before.get(bad, 0) == 1
    assert after[("embedrt_queue_depth", (("model", "default"),))] == 0
    for name in ("embedrt_queue_duration_seconds_count", "embedrt_tokenization_duration_seconds_count",
                 "embedrt_inference_duration_seconds_count", "embedrt_batch_size_count"):
        key = (name, (("model", "default"),))
        assert after[key] - before.get(key, 0) >= 3, name
    tokens = ("embedrt_batch_tokens_sum", (("model", "default"),))
    assert after[tokens] - before.get(tokens, 0) >= 3 * 3  # [CLS] counted [SEP]


def test_32_concurrent_clients_with_mixed_lengths_get_their_own_vectors(server, minilm):
    requests = [sample_sentences(8, min_words=1, max_words=120, seed=100 + i) for i in range(32)]
    results: dict[int, np.ndarray] = {}
    errors: list[str] = []
    barrier = threading.Barrier(32)

    def client(i: int) -> None:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as c:
            barrier.wait()
            response = c.post("/v1/embeddings", json={"input": requests[i], "encoding_format": "base64"})
            if response.status_code != 200:
                errors.append(f"{i}: {response.status_code} {response.text}")
                return
            results[i] = np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in response.json()["data"]])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = minilm.embed([t for r in requests for t in r])
    served = np.concatenate([results[i] for i in range(32)])
    assert min_cosine(served, expected) >= 0.99999
    assert np.abs(served - expected).max() < 1e-6


def test_unknown_route_is_404_in_the_error_shape(http):
    response = http.get("/v2/nothing")
    assert response.status_code == 404 and "/v2/nothing" in response.json()["error"]["message"]


def test_schemathesis_finds_no_server_error(server, tmp_path):
    """Property-based requests generated from the server's own OpenAPI schema, bounded examples per operation."""
    st = str(Path(sys.executable).with_name("schemathesis"))
    result = subprocess.run(
        [st, "run", f"{server.url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", "30",
         "--request-timeout", "60", "--workers", "1", "--seed", "1", "--header", f"Authorization: Bearer {KEY}"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"Selected: (\d+)/\1\s+Tested: \1", result.stdout), result.stdout[-4000:]  # every operation was exercised
    assert re.search(r"(\d+) generated, \1 passed", result.stdout), result.stdout[-4000:]


def test_the_warm_up_neither_warns_about_nor_counts_a_truncation(minilm_dir, caplog):
    import logging

    import embedrt
    from embedrt.runtime.text.tokenization import encode
    from embedrt.serve.models import WARM_UP_TEXTS, warm_up

    embedder = embedrt.TextEmbedder(minilm_dir, lanes=1)
    assert encode(embedder.tokenizer, sample_sentences(WARM_UP_TEXTS, min_words=1, max_words=120)).truncated  # some are too long
    with caplog.at_level(logging.WARNING, logger="embedrt"):
        warm_up(embedder)
    assert [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()] == []
    assert embedder.truncated_total == 0
