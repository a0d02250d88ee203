"""A real tritonserver from the nvidia-pytriton wheel, serving the python-backend repository built from the
bundled text model (with and without pooling in the graph) and a ResNet, checked over HTTP and gRPC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import embedrt
from embedrt.errors import InputError, TritonError
from embedrt.runtime.text.tokenization import pad_batch
from embedrt.sample_text import sample_sentences
from embedrt.triton.backend import TritonBackend
from embedrt.triton.repository import build_repository
from embedrt.triton.server import TritonServer
from image_samples import encoded, photos
from triton_repos import free_ports, without_graph_pooling

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("pytriton")
pytestmark = [pytest.mark.triton, pytest.mark.slow]

PROTOCOLS = ("http", "grpc")
MIN_COSINE = 0.99999


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


@pytest.fixture(scope="session")
def plain_minilm_dir(minilm_dir, tmp_path_factory):
    return without_graph_pooling(minilm_dir, tmp_path_factory.mktemp("export") / "minilm_plain")


@pytest.fixture(scope="session")
def triton_server(minilm_dir, plain_minilm_dir, resnet18_dir, tmp_path_factory):
    """One server for the session, on free ports; stopped (and its process group killed) by its PID at the end."""
    repo = build_repository([minilm_dir, plain_minilm_dir, resnet18_dir], tmp_path_factory.mktemp("triton") / "repo")
    http, grpc, metrics = free_ports(3)
    server = TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics).start()
    yield server
    server.stop()


def url(server: TritonServer, protocol: str) -> str:
    return server.http_url if protocol == "http" else server.grpc_url


@pytest.fixture(scope="session")
def texts():
    return sample_sentences(24, seed=3, max_words=64)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_strings_through_the_ensemble_match_local_embeddings(triton_server, minilm, texts, protocol):
    with embedrt.TritonEmbedder(url(triton_server, protocol), "minilm", protocol) as served:
        vectors = served.embed(texts)
        assert served.dim == 384
    assert vectors.shape == (len(texts), 384)
    assert min_cosine(vectors, minilm.embed(texts)) >= MIN_COSINE


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_client_side_tokens_through_the_encoder_match_local_sentence_and_token_embeddings(triton_server, minilm, minilm_dir, texts, protocol):
    with embedrt.TritonEmbedder(url(triton_server, protocol), "minilm", protocol, path=minilm_dir) as served:
        assert min_cosine(served.embed(texts), minilm.embed(texts)) >= MIN_COSINE
        tokens, local_tokens = served.embed_tokens(texts[:5]), minilm.embed_tokens(texts[:5])
    assert [t.shape for t in tokens] == [t.shape for t in local_tokens]
    assert max(float(np.abs(a - b).max()) for a, b in zip(tokens, local_tokens)) < 1e-4


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_strings_through_the_ensemble_equal_token_ids_sent_to_the_encoder(triton_server, minilm, texts, protocol):
    encoded_texts = minilm.tokenize(texts)
    with TritonBackend(url(triton_server, protocol), "minilm_encoder", protocol) as encoder:
        ids = pad_batch(encoded_texts, np.arange(len(texts)), encoder.input_names, 0)
        from_ids = encoder.run(ids, ["sentence_embedding"])["sentence_embedding"]
    with embedrt.TritonEmbedder(url(triton_server, protocol), "minilm", protocol) as served:
        from_strings = served.embed(texts)
    assert min_cosine(from_strings, from_ids) >= MIN_COSINE


def test_a_graph_without_pooling_is_pooled_by_the_servers_pooling_model(triton_server, minilm, texts):
    with embedrt.TritonEmbedder(triton_server.grpc_url, "minilm_plain", "grpc") as served:
        assert min_cosine(served.embed(texts), minilm.embed(texts)) >= MIN_COSINE


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_images_through_the_ensemble_and_through_the_encoder_match_local(triton_server, resnet18, resnet18_dir, protocol):
    images = [encoded(p) for p in photos()]
    reference = resnet18.embed(images)
    with embedrt.TritonEmbedder(url(triton_server, protocol), "resnet18", protocol) as served:
        assert min_cosine(served.embed(images), reference) >= MIN_COSINE
        with pytest.raises(TritonError, match=r"image\[0\] <12 bytes>: not an image"):
            served.embed([b"not an image"])
    with embedrt.TritonEmbedder(url(triton_server, protocol), "resnet18", protocol, path=resnet18_dir) as served:
        assert min_cosine(served.embed(photos()), reference) >= MIN_COSINE


def test_concurrent_requests_of_different_lengths_are_batched_on_the_server(triton_server, minilm):
    """Different lengths share a shape after the tokenizer's padding, so the encoder's dynamic batcher merges them."""
    requests = [[t] for t in sample_sentences(24, seed=11, min_words=2, max_words=40)]
    lengths = {len(minilm.tokenize(r).ids[0]) for r in requests}
    assert len(lengths) > 8  # really different lengths
    with TritonBackend(triton_server.grpc_url, "minilm_encoder", "grpc") as stats:
        before = stats.statistics()
        start = threading.Barrier(len(requests))
        results: dict[int, np.ndarray] = {}

        def send(i: int) -> None:  # an exception here leaves results[i] missing, which the checks below catch
            with embedrt.TritonEmbedder(triton_server.grpc_url, "minilm", "grpc") as served:
                served.dim  # connect before the barrier
                start.wait()
                results[i] = served.embed(requests[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(requests))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = _settled_statistics(stats, int(before.get("inference_count", 0)) + len(requests))
    inferences = int(after["inference_count"]) - int(before.get("inference_count", 0))
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert inferences == len(requests)
    assert executions < inferences  # some executions ran several requests at once
    batched = {int(b["batch_size"]) for b in after["batch_stats"]}
    assert max(batched) > 1
    served = np.concatenate([results[i] for i in range(len(requests))])
    assert min_cosine(served, minilm.embed([r[0] for r in requests])) >= MIN_COSINE


def _settled_statistics(backend: TritonBackend, inferences: int) -> dict:
    """The server records a batch's statistics just after answering it: wait (briefly) until they include every request."""
    deadline = time.monotonic() + 10
    while True:
        stats = backend.statistics()
        if int(stats.get("inference_count", 0)) >= inferences or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def test_truncation_by_the_servers_tokenizer_is_counted_or_refused_and_chunking_needs_the_export_dir(triton_server, minilm, minilm_dir):
    long_text = " ".join(["word"] * 400)
    with embedrt.TritonEmbedder(triton_server.http_url, "minilm", "http") as served:
        vectors = served.embed(["short", long_text])
        assert served.truncated_total == 1
        assert min_cosine(vectors, minilm.embed(["short", long_text])) >= MIN_COSINE
        with pytest.raises(InputError, match=r"texts\[1\] is longer"):
            served.embed(["short", long_text], truncate=False)
        with pytest.raises(TritonError, match=r"long_text=\.\.\.\): model 'minilm' takes strings.*path=EXPORT_DIR"):
            served.embed([long_text], long_text="chunk")
        assert served.embed(["short"], long_text="truncate").shape == (1, 384)
    with embedrt.TritonEmbedder(triton_server.http_url, "minilm", "http", path=minilm_dir) as served:  # the way it says
        chunked = served.embed(["short", long_text], long_text="chunk")
        assert served.truncated_total == 0
    assert min_cosine(chunked, minilm.embed(["short", long_text], long_text="chunk")) >= MIN_COSINE


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unknown_model_and_refused_shape_are_clear_errors(triton_server, protocol):
    with pytest.raises(TritonError, match=r"no ready model 'nope'.*models there: \[.*'minilm'"):
        TritonBackend(url(triton_server, protocol), "nope", protocol)
    with TritonBackend(url(triton_server, protocol), "minilm_encoder", protocol) as encoder:
        bad = {n: np.zeros((2, 3, 4), dtype=np.int64) for n in encoder.input_names}
        with pytest.raises(TritonError, match="refused inputs of shapes .*unexpected shape for input"):
            encoder.infer(bad, ["sentence_embedding"])


def test_a_request_past_its_timeout_is_a_clear_error(triton_server, minilm):
    with TritonBackend(triton_server.grpc_url, "minilm_encoder", "grpc") as encoder:
        encoder.timeout_s = 1e-4
        ids = pad_batch(minilm.tokenize(["a sentence"]), np.arange(1), encoder.input_names, 0)
        with pytest.raises(TritonError, match=r"gave no answer for inputs of shapes .* within 0.0001 s"):
            encoder.run(ids)


def test_an_export_dir_of_another_model_is_refused_for_client_side_preparation(triton_server, resnet18_dir):
    with pytest.raises(TritonError, match="serves another model than"):
        embedrt.TritonEmbedder(triton_server.http_url, "minilm_plain", path=resnet18_dir)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_server_that_is_down_is_a_clear_error_after_bounded_retries(protocol):
    (port,) = free_ports(1)
    started = time.monotonic()
    with pytest.raises(TritonError, match=r"no Triton at .* answers after 3 attempts"):
        TritonBackend(f"localhost:{port}", "minilm", protocol, retries=2, retry_wait_s=0.05)
    assert time.monotonic() - started < 30


def _serve(repo: Path, *ports: int) -> subprocess.Popen:
    http, grpc, metrics = ports
    return subprocess.Popen(
        [sys.executable, "-m", "embedrt.cli", "triton", "serve", str(repo), "--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_serve_reports_a_model_that_fails_to_load_with_the_servers_error_lines(minilm_dir, tmp_path):
    repo = build_repository([minilm_dir], tmp_path / "repo", name="broken")
    (repo / "broken_encoder" / "1" / "model.onnx").write_bytes(b"not an onnx file")
    process = _serve(repo, *free_ports(3))
    out, err = process.communicate(timeout=180)
    assert process.returncode == 2
    assert "failed to load 'broken_encoder'" in err
    assert "ONNX Runtime cannot load it" in err


def test_serve_stops_the_server_and_its_stubs_on_sigterm(resnet18_dir, tmp_path):
    repo = build_repository([resnet18_dir], tmp_path / "repo")
    process = _serve(repo, *free_ports(3))
    try:
        line = process.stdout.readline()
        assert "tritonserver ready (pid " in line, process.stderr.read() if process.poll() is not None else line
        pid = int(line.split("(pid ")[1].split(")")[0])
        os.killpg(pid, 0)  # the server's process group is alive
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        with pytest.raises(ProcessLookupError):
            os.killpg(pid, 0)  # nothing of it is left: server and stub processes are gone
    finally:
        if process.poll() is None:
            process.kill()
