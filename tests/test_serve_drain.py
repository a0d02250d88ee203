"""SIGTERM mid-storm: `embedrt serve` stops taking connections, answers every request it took, and exits 0."""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import httpx
import numpy as np

from embedrt.sample_text import sample_sentences
from tests.serve_server import start_server

CLIENTS = 16
REQUESTS = [sample_sentences(8, min_words=1, max_words=100, seed=300 + i) for i in range(CLIENTS)]


def test_sigterm_drains_every_accepted_request_and_exits_0(minilm_dir, minilm, tmp_path):
    server = start_server([(minilm_dir, "default")], tmp_path / "serve.log")
    expected = [minilm.embed(r) for r in REQUESTS]
    answered: list[tuple[int, float, np.ndarray]] = []  # (client, when, vectors)
    refused: list[str] = []  # requests the server never took: connection refused or closed before a response
    wrong: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS + 1)

    def client(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            start.wait()
            for _ in range(200):  # bounded: the signal comes long before
                try:
                    response = c.post("/v1/embeddings", json={"input": REQUESTS[i]})
                except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    with lock:
                        refused.append(type(exc).__name__)
                    return
                with lock:
                    if response.status_code != 200:
                        wrong.append(f"{response.status_code} {response.text[:200]}")
                        return
                    vectors = np.array([d["embedding"] for d in response.json()["data"]], dtype=np.float32)
                    answered.append((i, time.monotonic(), vectors))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    start.wait()
    while len(answered) < 2 * CLIENTS:  # the storm is under way
        time.sleep(0.01)
    signalled = time.monotonic()
    os.kill(server.proc.pid, signal.SIGTERM)
    for t in threads:
        t.join(120)
    code = server.proc.wait(120)

    assert code == 0, server.output()
    assert wrong == []
    assert len(refused) == CLIENTS  # every client was turned away at last, by connection, not by an error answer
    for i, _, vectors in answered:
        assert np.abs(vectors - expected[i]).max() < 1e-6
    assert any(when > signalled for _, when, _ in answered)  # requests in flight at the signal were answered
    drained = re.search(r"answered (\d+) of (\d+) accepted requests", server.output())
    assert drained, server.output()
    assert int(drained.group(1)) == int(drained.group(2)) == len(answered)
