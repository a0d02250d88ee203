"""`embedrt serve` under pressure: a full queue is 429 with Retry-After, a slow answer is 503."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedrt.sample_text import sample_sentences
from tests.serve_server import start_server

TIMEOUT = 0.3  # seconds; the slow request below needs seconds on two cores
SLOW_REQUEST = sample_sentences(256, min_words=150, max_words=200, seed=7)  # 256 texts of ~256 tokens


@pytest.fixture(scope="module")
def one_at_a_time(minilm_dir, tmp_path_factory):
    """A server that takes one unanswered request at a time."""
    running = start_server([(minilm_dir, "default")], tmp_path_factory.mktemp("serve-one") / "serve.log", "--max-concurrent", "1",
                           "--request-timeout", "600")  # a loaded machine must not turn the slow request into a 503
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture(scope="module")
def impatient(minilm_dir, tmp_path_factory):
    """A server that answers within TIMEOUT seconds or not at all."""
    running = start_server([(minilm_dir, "default")], tmp_path_factory.mktemp("serve-impatient") / "serve.log", "--request-timeout", str(TIMEOUT))
    yield running
    assert running.stop() == 0, running.output()


def queue_depth(url: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics").text)
    return next(s.value for f in families for s in f.samples if s.name == "embedrt_queue_depth")


def test_a_full_queue_is_429_with_retry_after_and_frees_its_slot_when_answered(one_at_a_time):
    url = one_at_a_time.url
    slow: dict[str, httpx.Response] = {}
    sender = threading.Thread(target=lambda: slow.update(r=httpx.post(f"{url}/v1/embeddings", json={"input": SLOW_REQUEST}, timeout=300)))
    sender.start()
    deadline = time.monotonic() + 120
    while queue_depth(url) < 1 and time.monotonic() < deadline:  # the slow request holds the only place
        time.sleep(0.01)
    full = httpx.post(f"{url}/v1/embeddings", json={"input": ["one more"]}, timeout=60)
    assert full.status_code == 429
    assert full.headers["retry-after"] == "1"
    assert full.json()["error"]["type"] == "rate_limit_error"
    assert "maximum of 1 unanswered requests" in full.json()["error"]["message"]
    sender.join(300)
    assert slow["r"].status_code == 200 and len(slow["r"].json()["data"]) == 256
    assert httpx.post(f"{url}/embed", json={"inputs": "fits now"}, timeout=60).status_code == 200


def test_an_answer_later_than_the_timeout_is_503_with_retry_after(impatient):
    slow = httpx.post(f"{impatient.url}/v1/embeddings", json={"input": SLOW_REQUEST}, timeout=300)
    assert slow.status_code == 503
    assert slow.headers["retry-after"] == "1"
    assert f"timeout of {TIMEOUT:g} s (--request-timeout)" in slow.json()["error"]["message"]
    assert "Traceback" not in slow.text
    families = text_string_to_metric_families(httpx.get(f"{impatient.url}/metrics").text)
    timeouts = [s.value for f in families for s in f.samples if s.name == "embedrt_requests_total" and s.labels["outcome"] == "timeout"]
    assert timeouts == [1.0]
