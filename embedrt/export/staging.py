"""Export dirs appear whole or not at all: everything is written into a hidden sibling, then renamed."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path
from typing import Iterator

from embedrt.errors import ExportError


@contextlib.contextmanager
def staged_dir(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary dir; on success it replaces `out`, on any error it is removed.

    A failed export therefore leaves `out` as it was (absent, or the previous good export).
    """
    out = Path(out).absolute()
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a directory; choose another path.")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"--out {out}: exists and is not empty; pass --overwrite (overwrite=True) to replace it.")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(paths: list[Path]) -> str:
    """sha256 over the source files that define a model (weights and config), in name order."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(file_digest(path).encode())
    return h.hexdigest()


def model_file_record(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": file_digest(path)}
