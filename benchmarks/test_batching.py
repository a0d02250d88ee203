"""The token-budget batcher and padding: pure CPU work between the tokenizer and the engine."""

import numpy as np
import pytest

from embedrt.runtime.batching import plan_batches, restore_order
from embedrt.runtime.text.tokenization import pad_batch


@pytest.fixture(scope="module")
def lengths():
    return np.random.default_rng(0).integers(5, 256, size=10_000)


def test_plan_batches_for_10000_texts(benchmark, lengths):
    batches = benchmark(plan_batches, lengths, max_batch_tokens=16384, max_batch_size=256)
    assert sum(len(b) for b in batches) == len(lengths)


def test_restore_order_of_10000_vectors(benchmark, lengths):
    batches = plan_batches(lengths, max_batch_tokens=16384, max_batch_size=256)
    results = [np.zeros((len(b), 384), dtype=np.float32) for b in batches]
    out = benchmark(restore_order, batches, results, len(lengths))
    assert out.shape == (len(lengths), 384)


def test_pad_a_batch_of_32(benchmark, embedder, sentences):
    encoded = embedder.tokenize(sentences)
    idx = np.arange(32)
    batch = benchmark(pad_batch, encoded, idx, embedder.backend.input_names, 0)
    assert batch["input_ids"].shape[0] == 32
