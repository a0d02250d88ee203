"""The pipelined text embedder (tokenising the next batches while the engine runs): same vectors, caller's order, errors surface."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import embedrt
import embedrt.runtime.text.embedder
from embedrt.errors import InputError
from embedrt.runtime.prefetch import prefetch
from embedrt.runtime.text.tokenization import encode
from embedrt.sample_text import sample_sentences

TEXTS = sample_sentences(300, min_words=1, max_words=60, seed=11)


@pytest.fixture(scope="module")
def pipelined(minilm_dir):
    return embedrt.TextEmbedder(minilm_dir, pipeline=True, lanes=1)


@pytest.fixture(scope="module")
def unpipelined(minilm_dir):
    return embedrt.TextEmbedder(minilm_dir, pipeline=False, lanes=1)


def test_pipeline_is_on_for_gpu_devices_only_by_default(minilm):
    assert minilm.pipeline is False  # device="cpu"


def test_pipelined_vectors_equal_unpipelined_ones_exactly(pipelined, unpipelined):
    # One wave: the same batches, so the same engine runs, bit for bit.
    assert len(TEXTS) <= embedrt.runtime.text.embedder.PIPELINE_WAVE
    assert np.array_equal(pipelined.embed(TEXTS), unpipelined.embed(TEXTS))


def test_many_waves_keep_the_callers_order(pipelined, unpipelined, monkeypatch):
    monkeypatch.setattr(embedrt.runtime.text.embedder, "PIPELINE_WAVE", 37)  # 9 waves, batches planned within each
    reversed_texts = TEXTS[::-1]
    got = pipelined.embed(reversed_texts)
    want = unpipelined.embed(reversed_texts)
    assert got.shape == (len(TEXTS), pipelined.dim)
    np.testing.assert_allclose(got, want, atol=2e-6)  # batch composition differs across waves: float rounding only
    assert np.argmax(got @ want.T, axis=1).tolist() == list(range(len(TEXTS)))


def test_a_single_text_runs_unpipelined_where_there_is_nothing_to_overlap(pipelined, unpipelined, monkeypatch):
    def no_pipeline(*args, **kwargs):
        raise AssertionError("a single text went through the pipeline")

    monkeypatch.setattr(pipelined, "_embed_pipelined", no_pipeline)
    assert np.array_equal(pipelined.embed([TEXTS[0]]), unpipelined.embed([TEXTS[0]]))
    with pytest.raises(AssertionError, match="went through the pipeline"):
        pipelined.embed(TEXTS[:2])


def test_progress_counts_every_text_once(pipelined):
    seen = []
    pipelined.embed(TEXTS[:50], progress=seen.append)
    assert sum(seen) == 50


def test_an_over_long_text_in_a_later_wave_is_refused_naming_its_index(pipelined, monkeypatch):
    monkeypatch.setattr(embedrt.runtime.text.embedder, "PIPELINE_WAVE", 16)
    texts = TEXTS[:40] + ["word " * 400]
    with pytest.raises(InputError, match=r"texts\[40\] is longer than the model's 256 tokens"):
        pipelined.embed(texts, truncate=False)
    assert pipelined.embed(["still works"]).shape == (1, pipelined.dim)


def test_an_engine_error_surfaces_and_stops_the_producer(pipelined, monkeypatch):
    engine = pipelined.lanes.whole
    calls = []

    def failing_run(inputs, output_names=None):
        calls.append(len(inputs["input_ids"]))
        raise RuntimeError("engine failed on purpose")

    monkeypatch.setattr(engine, "run", failing_run)
    before = threading.active_count()
    with pytest.raises(RuntimeError, match="on purpose"):
        pipelined.embed(TEXTS)
    assert len(calls) == 1 and threading.active_count() == before


def test_prefetch_raises_a_producer_error_at_its_item_after_the_ones_before():
    def items():
        yield 1
        yield 2
        raise ValueError("item 3 failed")

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for item in prefetch(items(), depth=1):
            got.append(item)
    assert got == [1, 2]


def test_prefetch_stops_its_producer_when_the_consumer_leaves_early():
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetch(items(), depth=2)
    assert [next(stream), next(stream)] == [0, 1]
    stream.close()
    assert len(produced) <= 5  # the two taken, two queued, one waiting to be put


def test_encode_without_offsets_gives_the_same_ids(minilm):
    texts = TEXTS[:64] + ["", "word " * 400, "x" * 20000]  # over 256 tokens; one unknown token from its 8,192-character head
    fast, full = encode(minilm.tokenizer, texts, offsets=False), encode(minilm.tokenizer, texts)
    assert fast.offsets == [] and len(full.offsets) == len(texts)
    assert all(np.array_equal(a, b) for a, b in zip(fast.ids, full.ids))
    assert all(np.array_equal(a, b) for a, b in zip(fast.type_ids, full.type_ids))
    assert fast.truncated == full.truncated == [len(texts) - 2]
