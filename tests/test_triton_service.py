"""`embedrt triton serve` as a service: loopback by default, taken ports refused, broken models fail fast with the
server's own line, SIGTERM drains in-flight requests, a server dying under a request is a TritonError. Real tritonserver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import embedrt
from embedrt.errors import InputError, TritonError
from embedrt.export import export_text
from embedrt.triton.backend import TritonBackend
from embedrt.triton.repository import build_repository
from embedrt.triton.server import TritonServer, port_owner
from random_models import random_distilbert
from triton_repos import free_ports, slow_model_repository

pytest.importorskip("tritonclient.grpc")
pytest.importorskip("pytriton")
pytestmark = [pytest.mark.triton, pytest.mark.slow]


@pytest.fixture
def slow_env(tmp_path, monkeypatch) -> Path:
    """The slow model's environment (inherited by servers started from here); returns the file a started request touches."""
    started = tmp_path / "started"
    monkeypatch.setenv("EMBEDRT_TEST_STARTED", str(started))
    monkeypatch.setenv("EMBEDRT_TEST_SLEEP_S", "8")
    return started


@pytest.fixture
def slow_server(tmp_path, slow_env):
    http, grpc, metrics = free_ports(3)
    server = TritonServer(slow_model_repository(tmp_path / "repo"), http_port=http, grpc_port=grpc, metrics_port=metrics).start()
    yield server
    server.stop()


def _serve(repo: Path, ports: list[int], *extra: str) -> subprocess.Popen:
    http, grpc, metrics = ports
    return subprocess.Popen(
        [sys.executable, "-m", "embedrt.cli", "triton", "serve", str(repo), "--http-port", str(http), "--grpc-port", str(grpc),
         "--metrics-port", str(metrics), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses of the TCP sockets listening on `port`, as /proc/net/tcp writes them (0100007F: 127.0.0.1);
    an IPv6 socket's v4-mapped address counts as its IPv4 address, any other IPv6 address as it is."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address[-8:] if address.startswith("0000000000000000FFFF0000") else address)
    return found


def _wait_for(path: Path, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert process is None or process.poll() is None, "the server exited early"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_the_server_binds_loopback_by_default_and_answers_there(slow_server):
    assert _listening_addresses(slow_server.http_port) == {"0100007F"}
    assert _listening_addresses(slow_server.grpc_port) == {"0100007F"}
    assert _listening_addresses(slow_server.metrics_port) == {"0100007F"}
    assert slow_server.http_url == f"127.0.0.1:{slow_server.http_port}"
    assert port_owner(slow_server.http_port, slow_server.pid) is True
    assert port_owner(slow_server.http_port, os.getpid()) is False


def test_host_binds_all_interfaces_when_asked(tmp_path, slow_env):
    repo = slow_model_repository(tmp_path / "repo")
    process = _serve(repo, ports := free_ports(3), "--host", "0.0.0.0", "--quiet")
    try:
        line = process.stdout.readline()
        assert f"http 127.0.0.1:{ports[0]}" in line, process.stderr.read() if process.poll() is not None else line
        assert _listening_addresses(ports[0]) == {"00000000"}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)


def test_a_second_serve_on_taken_ports_fails_clearly_and_the_first_keeps_serving(slow_server, tmp_path):
    ports = [slow_server.http_port, slow_server.grpc_port, slow_server.metrics_port]
    second = _serve(slow_server.repository, ports, "--quiet")
    out, err = second.communicate(timeout=120)
    assert second.returncode == 2
    assert "ready" not in out
    assert f"--http-port {ports[0]} on 127.0.0.1 cannot be used" in err
    with pytest.raises(TritonError, match=f"--grpc-port {ports[1]} on 127.0.0.1 cannot be used"):
        TritonServer(slow_server.repository, http_port=free_ports(1)[0], grpc_port=ports[1], metrics_port=free_ports(1)[0]).start()
    assert slow_server.is_ready() and slow_server.process.poll() is None


@pytest.mark.parametrize("host, says", [("192.0.2.1", "no interface of this machine has this address"), ("no-such-host.invalid", "not an address")])
def test_a_host_this_machine_does_not_have_is_refused_before_the_start(tmp_path, host, says):
    server = TritonServer(slow_model_repository(tmp_path / "repo"), host=host, http_port=free_ports(1)[0])
    with pytest.raises(TritonError, match=f"--host {host}: {says}"):
        server.start()
    assert server.process is None


def test_a_model_without_model_py_fails_fast_with_the_servers_own_line(tmp_path, slow_env):
    repo = slow_model_repository(tmp_path / "repo")
    (repo / "slow" / "1" / "model.py").unlink()
    http, grpc, metrics = free_ports(3)
    server = TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics, startup_timeout_s=600)
    with pytest.raises(TritonError, match=r"tritonserver cannot start .*Python model file not found in '.*slow/1/model.py'"):
        server.start()
    assert server.process.poll() is not None  # stopped, not left waiting
    process = _serve(repo, free_ports(3), "--quiet")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 2 and "Python model file not found" in err and "ready" not in out


def test_sigterm_drains_an_in_flight_request_then_stops_cleanly(tmp_path, slow_env):
    """The request takes 8 s, longer than the server's own 5 s default: the serve command's --exit-timeout-secs (30) lets it finish."""
    repo = slow_model_repository(tmp_path / "repo")
    ports = free_ports(3)
    process = _serve(repo, ports)
    replies: dict[str, object] = {}
    try:
        line = process.stdout.readline()
        assert "tritonserver ready (pid " in line, process.stderr.read() if process.poll() is not None else line
        pid = int(line.split("(pid ")[1].split(")")[0])

        def request(protocol: str, port: int) -> None:
            with TritonBackend(f"127.0.0.1:{port}", "slow", protocol) as backend:
                replies[protocol] = backend.infer({"x": np.arange(3, dtype=np.float32)}, ["y"])["y"]

        threads = [threading.Thread(target=request, args=("http", ports[0])), threading.Thread(target=request, args=("grpc", ports[1]))]
        for thread in threads:
            thread.start()
        _wait_for(slow_env, process)
        process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=120)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err[-3000:]
    assert {k: np.asarray(v).tolist() for k, v in replies.items()} == {"http": [0.0, 2.0, 4.0], "grpc": [0.0, 2.0, 4.0]}
    assert "tritonserver stopped" in err
    assert "Signal (11)" not in err and "Segmentation fault" not in err
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # server and stubs are gone


@pytest.mark.parametrize("protocol", ("http", "grpc"))
def test_a_request_in_flight_when_the_server_dies_is_a_triton_error(slow_server, slow_env, protocol):
    url = slow_server.http_url if protocol == "http" else slow_server.grpc_url
    outcome: dict[str, BaseException] = {}
    with TritonBackend(url, "slow", protocol, retries=1, retry_wait_s=0.05) as backend:

        def request() -> None:
            try:
                backend.infer({"x": np.arange(3, dtype=np.float32)}, ["y"])
            except BaseException as exc:  # the thread hands what it raised to the test
                outcome["error"] = exc

        thread = threading.Thread(target=request)
        thread.start()
        _wait_for(slow_env)
        os.killpg(slow_server.pid, signal.SIGKILL)
        thread.join(timeout=120)
    assert isinstance(outcome.get("error"), TritonError), repr(outcome.get("error"))
    assert f"{protocol}://{url}" in str(outcome["error"])


@pytest.fixture(scope="module")
def distil_server(tmp_path_factory, minilm_source):
    base = tmp_path_factory.mktemp("distil")
    exported = export_text(random_distilbert(base / "source", minilm_source), base / "distil")
    http, grpc, metrics = free_ports(3)
    server = TritonServer(build_repository([exported], base / "repo"), http_port=http, grpc_port=grpc, metrics_port=metrics).start()
    yield server
    server.stop()


@pytest.mark.parametrize("protocol", ("http", "grpc"))
def test_lone_surrogates_and_bytes_to_the_triton_client_are_input_errors_naming_the_index(distil_server, protocol):
    url = distil_server.http_url if protocol == "http" else distil_server.grpc_url
    with embedrt.TritonEmbedder(url, "distil", protocol) as served:
        with pytest.raises(InputError, match=r"texts\[1\] .*surrogate"):
            served.embed(["fine", "bad \udc80 text"])
        with pytest.raises(InputError, match=r"texts\[0\] is bytes"):
            served.embed([b"\xff\xfe not utf-8"])
        assert served.embed(["fine"]).shape == (1, 64)  # the connection is still good


def test_a_server_killed_under_serve_exits_1_naming_the_signal(tmp_path, slow_env):
    process = _serve(slow_model_repository(tmp_path / "repo"), free_ports(3), "--quiet")
    line = process.stdout.readline()
    assert "tritonserver ready (pid " in line, process.stderr.read() if process.poll() is not None else line
    os.kill(int(line.split("(pid ")[1].split(")")[0]), signal.SIGKILL)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1, (process.returncode, err)  # not 247, the -9 that wrapped around
    assert "embedrt: error: tritonserver was killed by signal 9 (SIGKILL)" in err, err
