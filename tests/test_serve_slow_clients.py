"""Slow and departing clients on a real `embedrt serve`: slow headers and stalled bodies are closed after their timeouts,
and each kind is counted apart from the server's own errors, logged in one line, never with a traceback."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bulk_fixtures import small_text_dir  # noqa: F401
from tests.serve_server import start_server

HEADER_TIMEOUT = 1.0  # seconds, --header-timeout
REQUEST_TIMEOUT = 2.0  # seconds, --request-timeout: it covers reading the body too
DRIP_SECONDS = 0.2  # a slow client's pause between bytes
BOUND = 30.0  # seconds: a client still open by then was never closed (the old server kept them for ever)
TIMER_SLACK = 0.05  # seconds: uvloop's timers run on a millisecond clock cached per loop turn, and may fire that early


@pytest.fixture(scope="module")
def server(small_text_dir, tmp_path_factory):
    running = start_server([(small_text_dir, "small")], tmp_path_factory.mktemp("serve-slow") / "serve.log",
                           "--header-timeout", str(HEADER_TIMEOUT), "--request-timeout", str(REQUEST_TIMEOUT),
                           "--max-wait-ms", "500")  # a lone request waits for company: long enough for its client to leave first
    yield running
    assert running.stop() == 0, running.output()


def connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=BOUND)


def until_closed(sock: socket.socket, drip: bytes = b"") -> tuple[bytes, int]:
    """Send `drip` a byte every DRIP_SECONDS (or nothing) until the server closes; (what it answered, bytes sent)."""
    answer, sent, deadline = b"", 0, time.monotonic() + BOUND
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], DRIP_SECONDS)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
            continue
        if drip:
            try:
                sock.sendall(drip[sent % len(drip) : sent % len(drip) + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                break
    else:
        raise AssertionError(f"the server kept the connection open for {BOUND} s (answered {answer[:200]!r}, {sent} bytes sent)")
    return answer, sent


def headers(length: int) -> bytes:
    return (f"POST /v1/embeddings HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def outcomes(url: str) -> dict[tuple[str, str], float]:
    """embedrt_requests_total by (route, outcome), summed over models."""
    counted: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=30).text):
        for s in family.samples:
            if s.name == "embedrt_requests_total":
                key = (s.labels["route"], s.labels["outcome"])
                counted[key] = counted.get(key, 0) + s.value
    return counted


def test_slow_headers_stalled_bodies_and_clients_that_leave_are_closed_and_counted_apart(server):
    body = json.dumps({"input": ["a text whose client will not wait"]}).encode()
    results: dict[str, tuple[float, bytes, int]] = {}

    def drip_headers(name: str) -> None:  # a request line, then a header a byte at a time, for ever
        start = time.monotonic()
        with connect(server.url) as sock:
            sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\n")
            answer, sent = until_closed(sock, drip=b"X-Slow: " + b"a" * 1000)
        results[name] = (time.monotonic() - start, answer, sent)

    def stall_body(name: str) -> None:  # the headers at once, then 4 bytes of the body, then nothing
        start = time.monotonic()  # before the headers leave: the server's clock starts after this
        with connect(server.url) as sock:
            sock.sendall(headers(len(body)) + body[:4])
            answer, sent = until_closed(sock)
        results[name] = (time.monotonic() - start, answer, sent)

    def idle(name: str) -> None:  # connects and says nothing
        start = time.monotonic()
        with connect(server.url) as sock:
            answer, sent = until_closed(sock)
        results[name] = (time.monotonic() - start, answer, sent)

    def leave(name: str, whole: bool) -> None:  # half of the body and gone, or the whole request and gone before the answer
        with connect(server.url) as sock:
            sock.sendall(headers(len(body)) + (body if whole else body[: len(body) // 2]))
        results[name] = (0.0, b"", 0)

    clients = [threading.Thread(target=drip_headers, args=(f"drip{i}",)) for i in range(2)]
    clients += [threading.Thread(target=stall_body, args=(f"stall{i}",)) for i in range(2)]
    clients += [threading.Thread(target=idle, args=("idle",)), threading.Thread(target=leave, args=("left mid-body", False)),
                threading.Thread(target=leave, args=("left before the answer", True))]
    for t in clients:
        t.start()
    for t in clients:
        t.join(BOUND + 10)
    assert sorted(results) == sorted(["drip0", "drip1", "stall0", "stall1", "idle", "left mid-body", "left before the answer"])

    for name in ("drip0", "drip1"):
        elapsed, answer, sent = results[name]
        assert elapsed >= HEADER_TIMEOUT - TIMER_SLACK and sent >= 2, (name, elapsed, sent)  # it kept sending: not an idle connection
        assert answer.startswith(b"HTTP/1.1 408 ") and b"--header-timeout" in answer, answer
    for name in ("stall0", "stall1"):
        elapsed, answer, _ = results[name]
        assert elapsed >= REQUEST_TIMEOUT - TIMER_SLACK, (name, elapsed)
        assert answer.startswith(b"HTTP/1.1 408 ") and b"(--request-timeout)" in answer and b"connection: close" in answer.lower(), answer
    elapsed, answer, _ = results["idle"]
    assert elapsed >= HEADER_TIMEOUT - TIMER_SLACK and answer == b""  # closed without a word: there was no request to answer

    deadline = time.monotonic() + BOUND  # the request whose client left before its answer finishes in the background
    while outcomes(server.url).get(("/v1/embeddings", "client_closed"), 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    counted = outcomes(server.url)
    assert counted.get(("-", "client_timeout")) == 2  # slow headers: no route was read
    assert counted.get(("/v1/embeddings", "client_timeout")) == 2
    assert counted.get(("/v1/embeddings", "client_closed")) == 2
    assert not any(outcome == "error" for _, outcome in counted)

    good = httpx.post(f"{server.url}/v1/embeddings", json={"input": ["still serving"]}, timeout=60)
    assert good.status_code == 200 and len(good.json()["data"][0]["embedding"]) == 64
    log = server.output()
    assert "Traceback" not in log
    closed = [line for line in log.splitlines() if "closed the connection" in line]
    assert len(closed) == 2 and all("/v1/embeddings" in line for line in closed), log
