"""atomic_write with real concurrent writer processes: the file at the target is always one writer's whole output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from embedrt.atomic_file import atomic_write, atomic_write_text

CHUNKS = 40
CHUNK = 64 * 1024

# Writes CHUNKS chunks of its own letter, slowly, so that two writers' writes overlap in time.
WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from embedrt.atomic_file import atomic_write

    target, letter, go, chunks, size = Path(sys.argv[1]), sys.argv[2].encode(), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    while not go.exists():
        time.sleep(0.005)

    def write(tmp):
        with open(tmp, "wb") as f:
            for _ in range(chunks):
                f.write(letter * size)
                f.flush()
                time.sleep(0.005)

    atomic_write(target, write)
    print("done", flush=True)
    """
)


def _writer(target: Path, letter: str, go: Path, chunks: int = CHUNKS) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), letter, str(go), str(chunks), str(CHUNK)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_two_processes_writing_one_path_leave_one_writers_complete_file(tmp_path):
    target = tmp_path / "vectors.npy"
    for round_ in range(3):
        go = tmp_path / f"go-{round_}"
        writers = [_writer(target, letter, go) for letter in "AB"]
        go.touch()
        results = [w.communicate(timeout=120) for w in writers]
        assert [w.returncode for w in writers] == [0, 0], [err for _, err in results]
        data = target.read_bytes()
        assert len(data) == CHUNKS * CHUNK
        assert data in (b"A" * len(data), b"B" * len(data))  # never a mix of the two
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(tmp_path):
    target = atomic_write_text(tmp_path / "out.json", "old")

    def failing(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    try:
        atomic_write(target, failing)
    except RuntimeError:
        pass
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_sigkilled_writers_temp_file_is_removed_by_the_next_write_and_a_live_ones_is_kept(tmp_path):
    target = tmp_path / "out.parquet"
    go = tmp_path / "go"
    go.touch()
    killed = _writer(target, "K", go, chunks=100_000)  # writes until killed
    live = _writer(target, "L", go, chunks=100_000)
    try:
        deadline = time.monotonic() + 60
        while len(_temp_files(tmp_path)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {_pid(p) for p in _temp_files(tmp_path)} == {killed.pid, live.pid}
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
        atomic_write_text(target, "next run")
        assert target.read_text() == "next run"
        assert [_pid(p) for p in _temp_files(tmp_path)] == [live.pid]  # the dead writer's is gone, the live one's kept
    finally:
        for process in (killed, live):
            if process.poll() is None:
                process.kill()
                process.wait()


def _temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.startswith(".out.partial-")]


def _pid(path: Path) -> int:
    return int(path.name.split("partial-")[1].split("-")[0])
