"""CUDA graphs for batch-1 calls (embedrt.runtime.engines.cuda_graphs): buckets, options, and the padding and binding they replay.

No GPU here: the graph capture itself is tested in tests/test_gpu.py. The bucket padding, the per-bucket bound
buffers and the cut back to a text's length are the same code on device_type="cpu" with a plain CPU session of the
real bundled model, which is what these tests run.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import embedrt
from embedrt.errors import ProviderError
from embedrt.runtime.engines.cuda_graphs import CudaGraphs, bucket_for, buckets, check_cuda_graphs, graph_providers, unsupported
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.sample_text import sample_sentences


def test_buckets_are_powers_of_two_from_16_ending_at_max_length():
    assert buckets(256) == [16, 32, 64, 128, 256]
    assert buckets(384) == [16, 32, 64, 128, 256, 384]
    assert buckets(512) == [16, 32, 64, 128, 256, 512]
    assert buckets(8) == [8]


@pytest.mark.parametrize("length, bucket", [(1, 16), (16, 16), (17, 32), (129, 256), (300, 384), (384, 384)])
def test_a_sequence_goes_to_the_smallest_bucket_that_holds_it(length, bucket):
    assert bucket_for(length, 384) == bucket


@pytest.mark.parametrize("length", [0, 385])
def test_a_length_outside_the_buckets_is_refused(length):
    with pytest.raises(ValueError, match=f"{length} tokens"):
        bucket_for(length, 384)


def test_graphs_are_on_by_default_only_for_cuda_with_a_known_max_length():
    assert check_cuda_graphs(None, "cuda", 256) is True
    assert check_cuda_graphs(None, "cuda", None) is False
    assert check_cuda_graphs(None, "cpu", 256) is False
    assert check_cuda_graphs(None, "tensorrt", 256) is False
    assert check_cuda_graphs(False, "cuda", 256) is False


@pytest.mark.parametrize("value, device, match", [
    (True, "cpu", r"cuda_graphs=True needs device='cuda'.*'cpu'"),
    (True, "tensorrt", r"cuda_graphs=True needs device='cuda'.*'tensorrt'"),
    ("yes", "cuda", r"cuda_graphs='yes': must be True, False or None"),
])
def test_a_bad_cuda_graphs_option_is_an_error_naming_it(value, device, match):
    with pytest.raises(ProviderError, match=match):
        check_cuda_graphs(value, device, 256)


def test_graph_capture_is_turned_on_for_the_cuda_provider_only():
    cuda = ("CUDAExecutionProvider", {"device_id": 0})
    assert graph_providers([cuda, "CPUExecutionProvider"]) == [
        ("CUDAExecutionProvider", {"device_id": 0, "enable_cuda_graph": "1"}), "CPUExecutionProvider"]
    assert cuda[1] == {"device_id": 0}  # the plain session's options are left as they were


def test_cuda_graphs_true_on_the_cpu_is_refused_at_load(minilm_dir):
    with pytest.raises(ProviderError, match="cuda_graphs=True needs device='cuda'"):
        embedrt.TextEmbedder(minilm_dir, cuda_graphs=True)


def test_a_cpu_engine_has_no_graphs_and_takes_cuda_graphs_false(minilm_dir, minilm):
    assert minilm.backend.cuda_graphs is None
    assert embedrt.load(minilm_dir, cuda_graphs=False).backend.cuda_graphs is None


@pytest.fixture(scope="module")
def cpu_buckets(minilm):
    """The bucket runner on a plain CPU session of the bundled model: the GPU path less the capture."""
    session = minilm.backend.session
    assert unsupported(session) is None
    return CudaGraphs(session, minilm.max_length, device_type="cpu")


TEXTS = ["one short query", "a", *sample_sentences(6, min_words=10, max_words=120, seed=3)]


def test_padded_batch1_vectors_equal_the_unpadded_ones_in_several_buckets(minilm, cpu_buckets):
    plain = minilm.embed(TEXTS)
    lengths = minilm.tokenize(TEXTS).lengths
    assert len({bucket_for(n, minilm.max_length) for n in lengths}) >= 3  # the texts span several buckets
    minilm.backend.cuda_graphs = cpu_buckets
    try:
        one_by_one = np.vstack([minilm.embed([t]) for t in TEXTS])
        tokens = minilm.embed_tokens([TEXTS[2]])[0]
    finally:
        minilm.backend.cuda_graphs = None
    np.testing.assert_allclose(one_by_one, plain, atol=1e-5)
    assert tokens.shape == (lengths[2], 384)  # token outputs cut back from the bucket to the text's length
    np.testing.assert_allclose(tokens, minilm.embed_tokens([TEXTS[2]])[0], atol=1e-4)
    assert set(cpu_buckets._bound) == {bucket_for(n, minilm.max_length) for n in lengths}


def test_a_bucket_reused_for_another_text_gives_that_texts_vector(minilm, cpu_buckets):
    first, second = "the cat sat on the mat", "quarterly revenue rose by nine percent"
    want = minilm.embed([first, second])
    minilm.backend.cuda_graphs = cpu_buckets
    try:
        got = [minilm.embed([t]) for t in (first, second, first)]
    finally:
        minilm.backend.cuda_graphs = None
    np.testing.assert_allclose(np.vstack(got), want[[0, 1, 0]], atol=1e-5)
    assert not np.allclose(got[0], got[1], atol=1e-2)


def test_two_threads_calling_at_once_each_get_their_own_vectors(minilm, cpu_buckets):
    texts = sample_sentences(40, min_words=2, max_words=12, seed=11)
    want = minilm.embed(texts)
    feeds = [(minilm.tokenize([t]).ids[0]) for t in texts]
    got: dict[int, np.ndarray] = {}

    def worker(rows):
        for i in rows:
            ids = np.asarray([feeds[i]], dtype=np.int64)
            inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
            got[i] = cpu_buckets.run(inputs, ["sentence_embedding"])["sentence_embedding"][0]

    threads = [threading.Thread(target=worker, args=(range(k, len(texts), 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(np.vstack([got[i] for i in range(len(texts))]), want, atol=1e-5)


def test_each_bucket_has_its_own_graph_id(minilm, cpu_buckets):
    for text in ("short", " ".join(["word"] * 40)):
        ids = np.asarray(minilm.tokenize([text]).ids, dtype=np.int64)
        cpu_buckets.run({"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}, ["sentence_embedding"])
    ids = [entry[3].get_run_config_entry("gpu_graph_id") for entry in cpu_buckets._bound.values()]
    assert sorted(ids, key=int) == [str(n) for n in range(1, len(cpu_buckets._bound) + 1)]


def test_capture_checks_a_replay_after_other_inputs_in_each_bucket_asked(cpu_buckets):
    cpu_buckets.capture([16, 64])
    assert {16, 64} <= set(cpu_buckets._bound)
