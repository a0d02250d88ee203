"""`embedrt serve` under pressure: a full queue is 429 with Retry-After, a slow answer is 503."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedrt.sample_text import sample_sentences
from tests.serve_server import start_server

TIMEOUT = 0.3  # seconds; the slow request below needs far more on two cores
SLOW_REQUEST = sample_sentences(256, min_words=150, max_words=200, seed=7)  # 256 texts of ~256 tokens


@pytest.fixture(scope="module")
def tight(minilm_dir, tmp_path_factory):
    """A server that takes one unanswered request at a time and answers within TIMEOUT seconds."""
    log = tmp_path_factory.mktemp("serve-tight") / "serve.log"
    running = start_server([(minilm_dir, "default")], log, "--max-concurrent", "1", "--request-timeout", str(TIMEOUT))
    yield running
    assert running.stop() == 0, running.output()


def queue_depth(url: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    return next(s.value for f in families for s in f.samples if s.name == "embedrt_queue_depth")


def test_a_slow_answer_is_503_and_a_full_queue_is_429_with_retry_after(tight):
    slow: dict[str, httpx.Response] = {}
    sender = threading.Thread(target=lambda: slow.update(r=httpx.post(f"{tight.url}/v1/embeddings", json={"input": SLOW_REQUEST}, timeout=120)))
    sender.start()
    deadline = time.monotonic() + 60
    while queue_depth(tight.url) < 1 and time.monotonic() < deadline:  # the slow request is in the queue
        time.sleep(0.01)
    full = httpx.post(f"{tight.url}/v1/embeddings", json={"input": ["one more"]}, timeout=60)
    assert full.status_code == 429
    assert full.headers["retry-after"] == "1"
    assert full.json()["error"]["type"] == "rate_limit_error"
    assert "maximum of 1 unanswered requests" in full.json()["error"]["message"]
    sender.join(120)
    assert slow["r"].status_code == 503
    error = slow["r"].json()["error"]
    assert f"timeout of {TIMEOUT:g} s (--request-timeout)" in error["message"] and "Traceback" not in slow["r"].text
    while queue_depth(tight.url) > 0 and time.monotonic() < deadline:  # the batch already running finishes, then
        time.sleep(0.05)
    assert httpx.post(f"{tight.url}/embed", json={"inputs": "fits now"}, timeout=60).status_code == 200  # the slot is free
