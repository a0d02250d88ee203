"""A local tritonserver from the nvidia-pytriton wheel (python backend only): start, wait until ready, stop.

What it takes, as found with nvidia-pytriton 0.7.0 (tritonserver 2.51):
- the python backend's stub must match this interpreter's minor version (a wrong one hangs at load);
  it is copied with the backend into a private backend dir, the wheel is never modified;
- the stub runs the first `python3` on PATH: this interpreter's bin dir goes first, so the models
  import numpy, onnxruntime, tokenizers and embedrt from this environment;
- LD_LIBRARY_PATH gets this interpreter's LIBDIR (a pyenv Python's libpython is not the system's)
  and the wheel's bundled libraries;
- the server runs in its own process group, is stopped with SIGINT and `--exit-timeout-secs` (it first waits
  for open HTTP connections, then for in-flight inferences), and anything left of the group (stub processes)
  is killed by the group id;
- it binds 127.0.0.1 unless told otherwise (`--http-address`, `--grpc-address`, `--metrics-address`);
- a taken port is refused before the start, and readiness counts only when the answering sockets are the
  started server's own: another server on the same ports would otherwise answer the probe;
- a python model whose stub cannot start (no model.py) makes the server wait forever: that log line ends the start.
"""

from __future__ import annotations

import collections
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from embedrt.errors import TritonError
from embedrt.processes import clean_stale_work_dirs, work_dir

STUB = "triton_python_backend_stub"
_ERROR_LINE = re.compile(r"^E\d{4} |error|Error|Traceback|Exception")
_NO_GPU_NOISE = re.compile(r"CUDA|Cuda|NVML|DCGM|pinned")  # what every start on a machine without a GPU prints
# Lines after which the server never becomes ready although it keeps running.
_FATAL_LINE = re.compile(r"Failed to preinitialize Python stub|Python model file not found|failed to start|Address already in use")
LOOPBACK = "127.0.0.1"


def pytriton_dist() -> Path:
    """`pytriton/tritonserver` inside the nvidia-pytriton wheel."""
    try:
        import pytriton
    except ImportError as exc:
        raise TritonError("a local tritonserver needs the nvidia-pytriton wheel: pip install 'embedrt[triton]'.") from exc
    dist = Path(pytriton.__file__).parent / "tritonserver"
    if not (dist / "bin" / "tritonserver").is_file():
        raise TritonError(f"{dist}/bin/tritonserver: missing; reinstall nvidia-pytriton (pip install --force-reinstall nvidia-pytriton==0.7.0).")
    return dist


def python_stub(dist: Path, version: str | None = None) -> Path:
    """The stub built for this interpreter's Python minor version, checked before the server would hang on a wrong one."""
    version = version or f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = dist / "python_backend_stubs" / version / STUB
    if not stub.is_file():
        have = sorted(p.name for p in (dist / "python_backend_stubs").iterdir()) if (dist / "python_backend_stubs").is_dir() else []
        raise TritonError(
            f"the nvidia-pytriton wheel has python-backend stubs for Python {', '.join(have) or 'none'}, not {version}; "
            "a stub of another version makes tritonserver hang at model load. Run embedrt from a Python it supports."
        )
    return stub


def prepare_backends(dist: Path, workspace: Path) -> Path:
    """WORKSPACE/backends/python with the wheel's python backend and the stub for this Python."""
    target = workspace / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    for item in (dist / "backends" / "python").iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    shutil.copy2(python_stub(dist), target / STUB)
    return workspace / "backends"


def server_environment(dist: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(dist.parent.parent / "nvidia_pytriton.libs"), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libs if p)
    return env


class TritonServer:
    """`with TritonServer(repo, http_port=..., grpc_port=...) as server:` a ready server, stopped on exit."""

    def __init__(
        self,
        repository: str | os.PathLike,
        *,
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        host: str = LOOPBACK,
        exit_timeout_s: int = 5,
        startup_timeout_s: float = 300.0,
        echo: IO[str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.repository = Path(repository).absolute()
        if not self.repository.is_dir():
            raise TritonError(f"{self.repository}: no such model repository; build one with `embedrt triton build EXPORT_DIR --repository {repository}`.")
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.host = host
        self.exit_timeout_s = exit_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.echo = echo
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=2000)
        self._workspace = None
        self._reader: threading.Thread | None = None
        self._fatal: str | None = None

    @property
    def client_host(self) -> str:
        """Where a client on this machine reaches the server: the bound address, or loopback when bound to all."""
        host = LOOPBACK if self.host in ("0.0.0.0", "::", "") else self.host
        return f"[{host}]" if ":" in host else host

    @property
    def http_url(self) -> str:
        return f"{self.client_host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.client_host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.client_host}:{self.metrics_port}/metrics"

    @property
    def ports(self) -> dict[str, int]:
        return {"--http-port": self.http_port, "--grpc-port": self.grpc_port, "--metrics-port": self.metrics_port}

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self, backend_dir: Path, dist: Path) -> list[str]:
        return [
            str(dist / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_dir}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--log-verbose=0",
            *self.extra_args,
        ]

    def start(self) -> "TritonServer":
        dist = pytriton_dist()
        self.check_ports_free()
        clean_stale_work_dirs()  # backends copied by servers that were killed
        self._workspace = work_dir("triton")
        try:
            backend_dir = prepare_backends(dist, Path(self._workspace.name))
            self.process = subprocess.Popen(
                self.command(backend_dir, dist),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                env=server_environment(dist),
                start_new_session=True,  # its own process group: Ctrl-C reaches us, we stop it and its stubs
            )
            self._reader = threading.Thread(target=self._read_log, name="tritonserver-log", daemon=True)
            self._reader.start()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_log(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.log.append(line.rstrip("\n"))
            if self._fatal is None and _FATAL_LINE.search(line):
                self._fatal = line.strip()
            if self.echo is not None:
                self.echo.write(line)
                self.echo.flush()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                if self._reader is not None:
                    self._reader.join(timeout=5)  # the whole log, error lines included
                raise TritonError(f"tritonserver exited with code {code} before it was ready (repository {self.repository}):\n{self.error_lines()}")
            if self._fatal is not None:
                raise TritonError(f"tritonserver cannot start (repository {self.repository}): {self._fatal}\n{self.error_lines()}")
            if self.is_ready():
                self._check_ports_owned()
                return
            time.sleep(0.2)
        raise TritonError(f"tritonserver was not ready after {self.startup_timeout_s:.0f} s (repository {self.repository}); its last lines:\n{self.error_lines()}")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def check_ports_free(self) -> None:
        """TritonError naming the option whose port is taken on `host` (a running server, most often)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for option, port in self.ports.items():
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed socket's TIME_WAIT is no owner
                try:
                    probe.bind((self.host, port))
                except (socket.gaierror, UnicodeError) as exc:
                    raise TritonError(f"--host {self.host}: not an address ({exc}); give an IP address of this machine, e.g. 127.0.0.1 or 0.0.0.0.") from None
                except OSError as exc:
                    if exc.errno == errno.EADDRNOTAVAIL:
                        raise TritonError(f"--host {self.host}: no interface of this machine has this address; give one it has, e.g. 127.0.0.1 or 0.0.0.0.") from None
                    raise TritonError(
                        f"{option} {port} on {self.host} cannot be used ({exc.strerror or exc}); another server is probably listening there. "
                        f"Choose free ports ({', '.join(self.ports)}) or stop the other server."
                    ) from None

    def _check_ports_owned(self) -> None:
        """The HTTP and gRPC ports must be listened on by the started server, not by another process that took them first."""
        assert self.process is not None
        for option in ("--http-port", "--grpc-port"):
            owner = port_owner(self.ports[option], self.process.pid)
            if owner is False:
                raise TritonError(
                    f"{option} {self.ports[option]}: another process listens there, not the tritonserver started (pid {self.process.pid}); "
                    "its readiness answer was not this server's. Choose free ports or stop the other server."
                )

    def error_lines(self, tail: int = 30) -> str:
        """The server's own error lines (or its last lines when it printed none)."""
        lines = list(self.log)
        errors = [line for line in lines if _ERROR_LINE.search(line) and not _NO_GPU_NOISE.search(line)]
        return "\n".join((errors or lines)[-tail:])

    def wait(self, timeout: float | None = None) -> int | None:
        """The server's exit code once it exits (None on timeout)."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> int | None:
        """SIGINT (the server drains in-flight requests for up to --exit-timeout-secs), then the process group is killed
        if it outlives that; idempotent. Returns the server's exit code (None if it never started)."""
        process = self.process
        if process is not None and process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGINT)
                process.wait(timeout=self.exit_timeout_s + 10)
            except subprocess.TimeoutExpired:
                pass
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stub processes left in the server's group
            except (ProcessLookupError, PermissionError):
                pass
            process.wait()
            if self._reader is not None:
                self._reader.join(timeout=5)
        if self._workspace is not None:
            self._workspace.cleanup()
            self._workspace = None
        return process.returncode if process is not None else None

    def __enter__(self) -> "TritonServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()


def port_owner(port: int, pid: int) -> bool | None:
    """Whether process `pid` holds the listening TCP socket of `port` (None when /proc cannot tell: not Linux)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False if inodes else None
