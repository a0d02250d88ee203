"""Files that survive a crash or power loss whole or not at all: a unique temp name, fsync, rename, fsync the directory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_durably(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` on a sibling named for this process, flushed to disk, then renamed over `path`.

    The temp name is unique per process, so two writers never share one (they may still race to rename:
    the work dir's lock is what keeps a second job out).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    sync_directory(path.parent)
    return path


def sync_directory(path: Path) -> None:
    """A rename is durable only once its directory entry is on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
