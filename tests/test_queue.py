"""The request queue: many callers, one token-budget stream, vectors equal to a plain embed, bounded memory."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

import embedrt
from embedrt.errors import InputError
from embedrt.runtime.queue import ImageQueue, QueueClosedError, QueueFullError, TextQueue, make_queue
from embedrt.sample_text import sample_document, sample_sentences
from tests.image_samples import encoded, photos


class GatedBackend:
    """The real ONNX Runtime backend, held at a gate so a test decides when batches may run."""

    def __init__(self, real) -> None:
        self.real = real
        self.gate = threading.Event()
        self.entered = threading.Event()  # a batch reached the engine
        self.calls: list[int] = []  # batch size of each run
        self.input_names, self.output_names = real.input_names, real.output_names
        self.is_padded, self.max_batch_size, self.providers = real.is_padded, real.max_batch_size, real.providers

    def run(self, inputs, output_names=None):
        self.entered.set()
        self.gate.wait(60)
        self.calls.append(len(next(iter(inputs.values()))))
        return self.real.run(inputs, output_names)


@pytest.fixture(scope="module")
def gated(minilm_dir, minilm):
    backend = GatedBackend(minilm.backend)
    backend.gate.set()  # open while the embedder self-checks on load
    embedder = embedrt.TextEmbedder(minilm_dir, backend=backend)
    backend.gate.clear()
    return embedder, backend


def test_requests_from_threads_equal_a_plain_embed(minilm):
    requests = [sample_sentences(8, min_words=1, max_words=80, seed=i) for i in range(16)]
    results: dict[int, np.ndarray] = {}
    with TextQueue(minilm) as queue:
        barrier = threading.Barrier(16)

        def caller(i: int) -> None:
            barrier.wait()
            results[i] = queue.embed(requests[i])

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    expected = minilm.embed([t for r in requests for t in r])
    got = np.concatenate([results[i] for i in range(16)])
    assert got.dtype == np.float32 and got.shape == (128, 384)
    assert np.abs(got - expected).max() < 1e-6


def test_asyncio_callers_get_their_own_rows_in_order(minilm):
    requests = [sample_sentences(k + 1, seed=50 + k) for k in range(10)]

    async def main(queue):
        return await asyncio.gather(*[queue.embed_async(r) for r in requests])

    with TextQueue(minilm) as queue:
        results = asyncio.run(main(queue))
    for request, got in zip(requests, results):
        assert got.shape == (len(request), 384)
        assert np.abs(got - minilm.embed(request)).max() < 1e-6


def test_concurrent_requests_are_merged_into_token_budget_batches(gated, minilm):
    embedder, backend = gated
    backend.calls.clear()
    backend.entered.clear()
    with TextQueue(embedder, max_wait_ms=0) as queue:
        queue.submit(["the first request runs alone"])
        assert backend.entered.wait(60)  # the engine holds batch 1 at the gate
        second = queue.submit(["the second forms the next round"])
        while not second.running():  # its round is taken; the batcher waits for the engine to take its batch
            time.sleep(0.001)
        later = [queue.submit([f"short text {i}", f"another {i}"]) for i in range(8)]
        backend.gate.set()
        results = [f.result(60) for f in later]
        backend.gate.clear()
    assert backend.calls == [1, 1, 16]  # the 8 requests that waited meanwhile: one batch under the 768-token budget
    for i, got in enumerate(results):
        assert np.abs(got - minilm.embed([f"short text {i}", f"another {i}"])).max() < 1e-6


def test_a_full_queue_refuses_at_once_and_takes_work_again_when_answered(gated):
    embedder, backend = gated
    queue = TextQueue(embedder, max_queued=2)
    try:
        held = [queue.submit(["one"]), queue.submit(["two"])]
        with pytest.raises(QueueFullError, match="maximum of 2 unanswered requests"):
            queue.submit(["three"])
        assert queue.depth == 2
        backend.gate.set()
        assert [f.result(60).shape for f in held] == [(1, 384), (1, 384)]
        assert queue.embed(["three"]).shape == (1, 384)
        assert queue.depth == 0
    finally:
        backend.gate.set()
        queue.close()
        backend.gate.clear()


def test_close_answers_every_accepted_request_then_refuses(gated):
    embedder, backend = gated
    queue = TextQueue(embedder)
    futures = [queue.submit(sample_sentences(3, seed=i)) for i in range(5)]
    closer = threading.Thread(target=queue.close)
    closer.start()
    backend.gate.set()
    closer.join(60)
    backend.gate.clear()
    assert all(f.done() and f.result().shape == (3, 384) for f in futures)
    with pytest.raises(QueueClosedError, match="closed"):
        queue.submit(["late"])


def test_a_cancelled_request_is_never_run(gated):
    embedder, backend = gated
    backend.calls.clear()
    with TextQueue(embedder, max_wait_ms=50) as queue:
        cancelled = queue.submit(["a", "b", "c"])
        assert cancelled.cancel()
        kept = queue.submit(["kept"])
        backend.gate.set()
        assert kept.result(60).shape == (1, 384)
        backend.gate.clear()
    assert backend.calls == [1]


def test_bad_input_raises_in_the_callers_thread_naming_it(minilm):
    with TextQueue(minilm) as queue:
        with pytest.raises(InputError, match=r"texts\[1\] is NoneType"):
            queue.submit(["fine", None])
        with pytest.raises(InputError, match=r"texts\[0\] is longer than the model's 256 tokens"):
            queue.submit([sample_document(400)], truncate=False)
        assert queue.depth == 0
        assert queue.embed([]).shape == (0, 384)


def test_token_output_equals_embed_tokens(minilm):
    texts = ["token level output", "and a second, longer text with more tokens"]
    with TextQueue(minilm) as queue:
        sentence = queue.submit(texts)
        tokens = queue.submit(texts, output="tokens")  # the same round: one batch asks for both outputs
        got = tokens.result()
        vectors = sentence.result()
    for a, b in zip(got, minilm.embed_tokens(texts)):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-5
    assert np.abs(vectors - minilm.embed(texts)).max() < 1e-6


def test_token_ids_equal_the_texts_they_came_from(minilm):
    texts = sample_sentences(4, seed=9)
    ids = [row.tolist() for row in minilm.tokenize(texts).ids]
    with TextQueue(minilm) as queue:
        future = queue.submit_token_ids(ids)
        assert future.tokens == sum(len(i) for i in ids)
        assert np.abs(future.result() - minilm.embed(texts)).max() < 1e-6
        with pytest.raises(InputError, match=r"input\[0\] holds a token id"):
            queue.submit_token_ids([[101, -5, 102]])


def test_image_queue_equals_image_embed(resnet18):
    paths = [encoded(p) for p in photos()]  # PNG bytes, as a server receives them
    queue = make_queue(resnet18, max_wait_ms=5)
    assert isinstance(queue, ImageQueue)
    with queue:
        futures = [queue.submit(paths[:1]), queue.submit(paths[1:])]
        got = np.concatenate([f.result() for f in futures])
        with pytest.raises(InputError, match=r"images\[0\]"):
            queue.submit([b"not an image"])
    assert np.abs(got - resnet18.embed(paths)).max() < 1e-6
