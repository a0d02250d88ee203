"""Lanes: several batches at once on one-thread sessions, the same vectors as one batch at a time, nothing lost on an error."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import embedrt
from embedrt.errors import EmbedrtError
from embedrt.runtime.engines.lanes import Lanes
from embedrt.runtime.queue import TextQueue
from embedrt.sample_text import sample_sentences


@pytest.fixture(scope="module")
def two_lanes(minilm_dir):
    return embedrt.TextEmbedder(minilm_dir, lanes=2)


@pytest.fixture(scope="module")
def one_lane(minilm_dir):
    return embedrt.TextEmbedder(minilm_dir, lanes=1)


def test_two_lanes_give_the_vectors_of_one(two_lanes, one_lane):
    texts = sample_sentences(300, seed=11, min_words=1, max_words=150)
    assert two_lanes.lanes.count == 2 and one_lane.lanes.count == 1
    assert two_lanes.lanes.single.session.get_session_options().intra_op_num_threads == 1
    fast, plain = two_lanes.embed(texts), one_lane.embed(texts)
    assert fast.shape == (300, two_lanes.dim)
    assert np.abs(fast - plain).max() <= 1e-6


def test_token_vectors_and_progress_through_lanes(two_lanes, one_lane):
    texts = sample_sentences(40, seed=12, min_words=1, max_words=90)
    done: list[int] = []
    two_lanes.embed(texts, progress=done.append)
    assert sum(done) == 40 and len(done) > 1  # several batches, each counted once, in the caller's thread
    for a, b in zip(two_lanes.embed_tokens(texts), one_lane.embed_tokens(texts)):
        assert a.shape == b.shape and np.abs(a - b).max() <= 1e-6


def test_the_queue_runs_a_round_on_both_lanes(two_lanes, one_lane):
    texts = sample_sentences(64, seed=13, min_words=2, max_words=60)
    with TextQueue(two_lanes) as queue:
        futures = [queue.submit(texts[i : i + 8]) for i in range(0, 64, 8)]
        got = np.concatenate([f.result(60) for f in futures])
    assert np.abs(got - one_lane.embed(texts)).max() <= 1e-6


def test_batches_run_at_once_longest_first():
    """Real threads: the longest batches start first, two run together, results come back by index."""
    lanes = Lanes(whole="whole", single="single", count=2)
    started: list[int] = []
    running, most = [0], [0]
    lock = threading.Lock()

    def work(engine, i):
        with lock:
            started.append(i)
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        return engine, i * 10

    got = dict(lanes.map(work, [5, 50, 20, 40]))
    assert got == {0: ("single", 0), 1: ("single", 10), 2: ("single", 20), 3: ("single", 30)}
    assert set(started[:2]) == {1, 3} and most[0] == 2
    assert list(lanes.map(work, [7])) == [(0, ("whole", 0))]  # a lone batch runs on the whole session
    lanes.close()


def test_a_failing_batch_raises_once_the_others_have_finished():
    lanes = Lanes(whole="whole", single="single", count=2)
    started: list[int] = []
    finished: list[int] = []

    def work(engine, i):
        started.append(i)
        if i == 0:
            raise ValueError("batch 0 broke")
        time.sleep(0.05)
        finished.append(i)
        return i

    with pytest.raises(ValueError, match="batch 0 broke"):
        for _ in lanes.map(work, [9, 8, 7]):
            pass
    seen = (list(started), list(finished))
    assert set(started) - {0} == set(finished)  # every batch that started ran to its end before the error was raised
    time.sleep(0.2)
    assert (started, finished) == seen  # and none ran on behind it
    lanes.close()


@pytest.mark.parametrize("lanes, message", [(0, "lanes"), (True, "lanes"), (1.5, "lanes")])
def test_a_bad_lane_count_is_refused(minilm_dir, lanes, message):
    with pytest.raises(EmbedrtError, match=message):
        embedrt.TextEmbedder(minilm_dir, lanes=lanes, verify="off")


def test_lanes_need_an_engine_the_embedder_opens(minilm_dir, minilm):
    with pytest.raises(EmbedrtError, match="lanes=2: lanes are for a CPU engine the embedder opens itself"):
        embedrt.TextEmbedder(minilm_dir, backend=minilm.backend, lanes=2)
    assert embedrt.TextEmbedder(minilm_dir, backend=minilm.backend).lanes.count == 1  # a given engine: one lane by default


def test_one_thread_means_one_lane_and_no_second_session(minilm_dir):
    embedder = embedrt.TextEmbedder(minilm_dir, session={"intra_op_threads": 1})
    assert embedder.lanes.count == 1 and embedder.lanes.single is None


def test_serve_gives_text_options_to_text_models_only(minilm_dir, resnet18_dir):
    from embedrt.serve.models import load_model

    text = load_model(str(minilm_dir), "text", device="cpu", queue_options={}, observer=None, max_batch_tokens=512, lanes=1)
    image = load_model(str(resnet18_dir), "image", device="cpu", queue_options={}, observer=None, max_batch_tokens=512, lanes=1)
    try:
        assert text.embedder.lanes.count == 1 and text.embedder.max_batch_tokens == 512
        assert text.info()["lanes"] == 1 and text.info()["max_batch_tokens"] == 512
        assert image.modality == "image" and "lanes" not in image.info()
    finally:
        text.queue.close()
        image.queue.close()


def test_served_sessions_do_not_spin(minilm_dir):
    from embedrt.serve.models import load_model

    served = load_model(str(minilm_dir), "text", device="cpu", queue_options={}, observer=None)
    try:
        for backend in (served.embedder.backend, served.embedder.lanes.single):
            entries = backend.session.get_session_options().get_session_config_entry
            assert entries("session.intra_op.allow_spinning") == "0"
    finally:
        served.queue.close()


def test_info_reports_the_memory_of_the_lanes_second_copy_and_lanes_1_saves_it(minilm_dir):
    import json
    import subprocess
    import sys

    def memory(*extra) -> dict:
        result = subprocess.run([sys.executable, "-m", "embedrt.cli", "info", str(minilm_dir), *extra], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["memory"]

    two, one = memory("--lanes", "2"), memory("--lanes", "1")
    model_mb = (minilm_dir / "model.onnx").stat().st_size / 1e6
    assert two["model_file_mb"] == one["model_file_mb"] == round(model_mb, 1)
    assert (two["lanes"], one["lanes"]) == (2, 1)
    # the one-thread engine holds the weights again: at least half the model file, measured as this process's RSS grew
    assert two["lanes_engine_mb"] >= model_mb / 2 and one["lanes_engine_mb"] == 0
    assert one["resident_mb"] < two["resident_mb"] - model_mb / 2
    assert "--lanes 1" in two["note"] and "note" not in one
