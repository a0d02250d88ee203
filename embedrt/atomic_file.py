"""Files appear whole or not at all: written beside their target under a name unique to the writer, then renamed over it."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import uuid
from pathlib import Path
from typing import Callable

from embedrt.processes import pid_alive


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, durable: bool = False) -> Path:
    """Call `write(tmp)` on a hidden sibling of `path` (same suffix, so format sniffing still works),
    then rename it to `path`; on any error the sibling is removed and `path` is left as it was.

    The sibling's name carries this PID and a random part: concurrent writers of one path never share it, so
    whichever renames last wins with its own complete file. Siblings of killed writers are removed here.
    `durable`: the file and then its directory entry are flushed to disk, so a power loss keeps it whole too.
    """
    path = Path(path)
    _remove_stale_siblings(path)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}-{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        write(tmp)
        if durable:
            _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if durable:
        _fsync(path.parent)  # a rename is durable only once its directory entry is on disk
    return path


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _remove_stale_siblings(path: Path) -> None:
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.partial-(\d+)-[0-9a-f]{{12}}{re.escape(path.suffix)}$")
    with contextlib.suppress(OSError):
        for sibling in path.parent.glob(f".{glob.escape(path.stem)}.partial-*"):
            match = pattern.match(sibling.name)
            if match and not pid_alive(int(match[1])) and sibling.is_file():
                sibling.unlink(missing_ok=True)
