"""The work dir beside an output: an exclusive lock, the parts, and a journal of finished chunks.

`OUT.parquet.parts/` holds `lock`, `journal.json` and `part-000000.parquet`, `part-000000.skipped.jsonl`...
A part is written and renamed into place before the journal that lists it is committed (unique temp
name, fsync, rename, fsync of the directory), so after a crash at any point the journal names only
whole parts, and a part it does not name is redone. Once the output is assembled the parts are
deleted and the journal stays, marked finished, so a rerun can say the job is done.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from embedrt.atomic_file import atomic_write
from embedrt.errors import EmbedrtError, InputError

WORK_SUFFIX = ".parts"
JOURNAL_NAME = "journal.json"
LOCK_NAME = "lock"
JOURNAL_KIND = "embedrt bulk journal"
JOURNAL_VERSION = 1
OUR_NAMES = (JOURNAL_NAME, LOCK_NAME, "assembled", "part-")  # a work dir holding anything else is not ours to delete


class WorkDir:
    def __init__(self, output: Path) -> None:
        self.output = output
        self.path = output.with_name(output.name + WORK_SUFFIX)
        self._lock_fd: int | None = None

    # -- the lock: one job per output ---------------------------------------------------------------
    def lock(self) -> None:
        """Create the work dir and hold its lock; a second job on the same output is refused, not queued."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--output {self.output}: {self.path} exists and is not a directory; move it away.")
        try:
            self.path.mkdir(exist_ok=True)
            while True:
                fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise InputError(
                        f"--output {self.output}: another `embedrt embed` (pid {owner}) is writing it; wait for it to "
                        "finish, or choose another --output."
                    ) from None
                if _same_file(fd, self.path / LOCK_NAME):
                    break
                os.close(fd)  # the holder finished and removed this lock file meanwhile: take the new one
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)  # also proves the device takes a write before any work
            os.fsync(fd)
        except OSError as exc:
            raise output_error(self.output, exc, "cannot create its work dir " + str(self.path)) from exc
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # -- the journal ----------------------------------------------------------------------------------
    def load(self) -> dict[str, Any] | None:
        path = self.path / JOURNAL_NAME
        try:
            journal = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(f"--output {self.output}: its journal {path} is unreadable ({exc}); pass --overwrite to start over.") from exc
        if not isinstance(journal, dict) or journal.get("kind") != JOURNAL_KIND or journal.get("version") != JOURNAL_VERSION:
            raise InputError(f"--output {self.output}: {path} is not a journal this embedrt understands; pass --overwrite to start over.")
        return journal

    def commit(self, journal: dict[str, Any]) -> None:
        journal = {"kind": JOURNAL_KIND, "version": JOURNAL_VERSION, **journal}
        text = json.dumps(journal, indent=1) + "\n"
        self.write(self.path / JOURNAL_NAME, lambda tmp: tmp.write_text(text, encoding="utf-8"))

    def write(self, path: Path, write) -> None:
        try:
            atomic_write(path, write, durable=True)
        except OSError as exc:
            raise output_error(self.output, exc, f"writing {path.name}") from exc

    # -- parts ----------------------------------------------------------------------------------------
    def part(self, index: int, suffix: str) -> Path:
        return self.path / f"part-{index:06d}{suffix}"

    def skipped(self, index: int) -> Path:
        return self.path / f"part-{index:06d}.skipped.jsonl"

    def remove_parts(self, keep: int = 0) -> None:
        """Delete parts numbered `keep` and up (and stray temp files): what a journal does not list is redone."""
        for entry in self.path.iterdir():
            name = entry.name
            if name.startswith(".") and ".partial-" in name:  # atomic_write's temp files of a killed run
                entry.unlink()
            elif name.startswith("part-") and int(name[5:11]) >= keep:
                entry.unlink()
            elif name.startswith("assembled"):
                entry.unlink()

    def parts_bytes(self, keep: int = 0) -> int:
        """The bytes of the parts numbered `keep` and up: what remove_parts(keep) frees."""
        return sum(e.stat().st_size for e in self.path.iterdir() if e.name.startswith("part-") and int(e.name[5:11]) >= keep)

    def is_ours(self) -> bool:
        return all(e.name.lstrip(".").startswith(OUR_NAMES) for e in self.path.iterdir())

    def delete(self) -> None:
        """Remove the work dir, only if it holds nothing but what a job writes."""
        if not self.path.is_dir():
            return
        if not self.is_ours():
            raise InputError(f"--output {self.output}: {self.path} holds files embedrt did not write; move them away first.")
        shutil.rmtree(self.path)


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def output_error(output: Path, exc: OSError, doing: str) -> EmbedrtError:
    """An OSError while writing, as an error naming --output and saying what to do."""
    if exc.errno == errno.ENOSPC:
        return InputError(f"--output {output}: no space left on the device ({doing}); free some space and run the same command again: finished chunks are kept.")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return InputError(f"--output {output}: not writable ({doing}: {exc.strerror}); choose a writable directory.")
    return InputError(f"--output {output}: {doing} failed ({exc}).")
