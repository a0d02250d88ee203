"""A real `embedrt serve` process on a free 127.0.0.1 port, for tests; stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

EMBEDRT = str(Path(sys.executable).with_name("embedrt"))
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    proc: subprocess.Popen
    url: str
    log: Path
    api_key: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)


def start_server(models: list[tuple[Path, str]], log: Path, *extra: str, api_key: str | None = None) -> RunningServer:
    """`embedrt serve` on the models (dir, name); returns once /health answers 200."""
    port = free_port()
    cmd = [EMBEDRT, "serve", *[str(d) for d, _ in models], "--port", str(port)]
    for _, name in models:
        cmd += ["--name", name]
    if api_key:
        cmd += ["--api-key", api_key]
    cmd += list(extra)
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    server = RunningServer(proc, f"http://127.0.0.1:{port}", log, api_key)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedrt serve exited with {proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"embedrt serve did not become healthy in {STARTUP_SECONDS} s:\n{server.output()}")
