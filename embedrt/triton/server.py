"""A local tritonserver from the nvidia-pytriton wheel (python backend only): start, wait until ready, stop.

What it takes, as found with nvidia-pytriton 0.7.0 (tritonserver 2.51):
- the python backend's stub must match this interpreter's minor version (a wrong one hangs at load);
  it is copied with the backend into a private backend dir, the wheel is never modified;
- the stub runs the first `python3` on PATH: this interpreter's bin dir goes first, so the models
  import numpy, onnxruntime, tokenizers and embedrt from this environment;
- LD_LIBRARY_PATH gets this interpreter's LIBDIR (a pyenv Python's libpython is not the system's)
  and the wheel's bundled libraries;
- the server runs in its own process group, is stopped with SIGINT and `--exit-timeout-secs`,
  and anything left of the group (stub processes) is killed by the group id.
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from embedrt.errors import TritonError

STUB = "triton_python_backend_stub"
_ERROR_LINE = re.compile(r"^E\d{4} |error|Error|Traceback|Exception")
_NO_GPU_NOISE = re.compile(r"CUDA|Cuda|NVML|DCGM|pinned")  # what every start on a machine without a GPU prints


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
        exit_timeout_s: int = 5,
        startup_timeout_s: float = 300.0,
        echo: IO[str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.repository = Path(repository).absolute()
        if not self.repository.is_dir():
            raise TritonError(f"{self.repository}: no such model repository; build one with `embedrt triton build EXPORT_DIR --repository {repository}`.")
        self.http_port, self.grpc_port, self.metrics_port = http_port, grpc_port, metrics_port
        self.exit_timeout_s = exit_timeout_s
        self.startup_timeout_s = startup_timeout_s
        self.echo = echo
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=2000)
        self._workspace: Path | None = None
        self._reader: threading.Thread | None = None

    @property
    def http_url(self) -> str:
        return f"localhost:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"localhost:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://localhost:{self.metrics_port}/metrics"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self, backend_dir: Path, dist: Path) -> list[str]:
        return [
            str(dist / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={backend_dir}",
            f"--http-port={self.http_port}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-port={self.metrics_port}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--log-verbose=0",
            *self.extra_args,
        ]

    def start(self) -> "TritonServer":
        dist = pytriton_dist()
        self._workspace = Path(tempfile.mkdtemp(prefix="embedrt-triton-"))
        try:
            backend_dir = prepare_backends(dist, self._workspace)
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
            if self.is_ready():
                return
            time.sleep(0.2)
        raise TritonError(f"tritonserver was not ready after {self.startup_timeout_s:.0f} s (repository {self.repository}); its last lines:\n{self.error_lines()}")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://localhost:{self.http_port}/v2/health/ready", timeout=1) as reply:
                return reply.status == 200
        except (urllib.error.URLError, OSError):
            return False

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

    def stop(self) -> None:
        """SIGINT, then the process group is killed if it outlives --exit-timeout-secs; idempotent."""
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
            shutil.rmtree(self._workspace, ignore_errors=True)
            self._workspace = None

    def __enter__(self) -> "TritonServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
