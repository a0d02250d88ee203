"""Export dirs appear whole or not at all: everything is written into a hidden sibling, then renamed.

`--overwrite` replaces only what embedrt wrote there before: each staged dir gets a marker file listing
its kind and its files, and a dir is replaced only if its marker says the same kind and it holds nothing
else. Staging names carry the writer's PID, so what a killed run left behind is removed by the next one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterable, Iterator

from embedrt.errors import ExportError
from embedrt.manifest import file_sha256
from embedrt.processes import clean_stale_work_dirs, pid_alive, work_dir  # noqa: F401 (work_dir: the exporters' import site)

MARKER_NAME = ".embedrt-files.json"
KINDS = {"text": "text export", "image": "image export", "features": "features export", "triton": "Triton model repository"}
_STAGING = re.compile(r"^\.(?P<name>.+)\.(?P<what>partial|old)-(?P<pid>\d+)(?:-[0-9a-f]+)?$")  # without the suffix: left by older versions
# What exports written before the marker existed hold: the manifest, the graph, tokenizer files.
_LEGACY_EXPORT_FILE = re.compile(
    r"^(embedrt\.json|model\.onnx(\.data)?|model\.plan|tokenizer.*|special_tokens_map\.json|vocab.*|merges\.txt|added_tokens\.json|chat_template\.jinja|.*\.model|references?\..*)$"
)


@contextlib.contextmanager
def staged_dir(
    out: str | os.PathLike,
    *,
    kind: str,
    overwrite: bool = False,
    sources: Iterable[str | os.PathLike] = (),
    option: str = "--out",
) -> Iterator[Path]:
    """Yield an empty temporary dir; on success it replaces `out`, on any error it is removed.

    A failed export therefore leaves `out` as it was (absent, or the previous good export). `kind` is a key
    of KINDS; `sources` are the paths the work reads (never replaced, nor any dir holding them); `option`
    names `out` in messages.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {sorted(KINDS)}")
    out = Path(out).absolute()
    check_not_precious(out, sources, option)  # before anything is touched, even stale leftovers beside it
    clean_stale_staging(out.parent)
    check_replaceable(out, kind=kind, overwrite=overwrite, sources=sources, option=option)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # unique per writer, even two in one process
    tmp.mkdir()
    try:
        yield tmp
        _write_marker(tmp, kind)
        check_replaceable(out, kind=kind, overwrite=overwrite, sources=sources, option=option)  # again: it may have changed meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def check_replaceable(out: Path, *, kind: str, overwrite: bool, sources: Iterable[str | os.PathLike] = (), option: str = "--out") -> None:
    """Raise ExportError unless `out` is absent, an empty dir, or (with overwrite) an earlier `kind` written by embedrt."""
    out = Path(out).absolute()
    check_not_precious(out, sources, option)
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir():
        raise ExportError(f"{option} {out}: exists and is not a directory; choose another path.")
    if not any(out.iterdir()):
        return
    if not overwrite:
        raise ExportError(f"{option} {out}: exists and is not empty; pass --overwrite (overwrite=True) to replace an earlier {KINDS[kind]}.")
    reason = _not_ours(out, kind)
    if reason:
        raise ExportError(
            f"{option} {out}: --overwrite replaces only an earlier {KINDS[kind]} written by embedrt, and {reason}; "
            f"nothing was deleted. Choose another {option}, or move or delete its contents yourself."
        )


def check_not_precious(out: Path, sources: Iterable[str | os.PathLike], option: str) -> None:
    """Never replace the filesystem root, the home dir, the current dir or its parents, nor a source or a dir holding one."""
    target = out.resolve()
    cwd = Path.cwd().resolve()
    home = Path.home().resolve()
    if target == Path(target.anchor) or target == home or target in home.parents or target == cwd or target in cwd.parents:
        raise ExportError(f"{option} {out}: is the root, the home dir or the current dir (or one of its parents); give a dir of its own.")
    for source in sources:
        source = Path(source).resolve()
        if target == source or target in source.parents:
            what = "is" if target == source else "holds"
            raise ExportError(f"{option} {out}: {what} the source {source}, which must not be replaced; choose another {option}.")


def _not_ours(out: Path, kind: str) -> str:
    """Why `out` is not an earlier `kind` written by embedrt ('' when it is)."""
    paths = list(out.rglob("*"))
    files = {p.relative_to(out).as_posix() for p in paths if p.is_file() or p.is_symlink()}
    dirs = {p.relative_to(out).as_posix() + "/" for p in paths if p.is_dir() and not p.is_symlink()}
    marker = out / MARKER_NAME
    if marker.is_file():
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
            recorded_kind, recorded = record["kind"], set(record["files"])
            holding = {parent.as_posix() + "/" for name in recorded for parent in Path(name).parents if parent != Path(".")}
            holding |= {d.rstrip("/") + "/" for d in record.get("dirs", [])}  # empty ones too (an ensemble's version dir)
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"its {MARKER_NAME} is unreadable"
        if recorded_kind != kind:
            return f"it is a {KINDS.get(recorded_kind, recorded_kind)}"
        foreign = sorted((files - recorded - {MARKER_NAME}) | (dirs - holding))
    elif kind == "triton":
        return f"it has no {MARKER_NAME} (the mark of a repository `embedrt triton build` wrote)"
    else:
        foreign = sorted({f for f in files if not _LEGACY_EXPORT_FILE.match(f)} | dirs)  # exports are flat
    if kind != "triton":
        modality = _manifest_modality(out)
        if modality != kind:
            return f"it holds no {kind} manifest (embedrt.json: {modality or 'missing or unreadable'})"
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        return f"it holds files embedrt did not write there ({shown})"
    return ""


def _manifest_modality(out: Path) -> str | None:
    from embedrt.manifest import MANIFEST_NAME

    try:
        modality = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8")).get("modality")
    except (OSError, ValueError, AttributeError):
        return None
    return modality if isinstance(modality, str) else None


def _write_marker(tmp: Path, kind: str) -> None:
    paths = list(tmp.rglob("*"))
    files = sorted(p.relative_to(tmp).as_posix() for p in paths if p.is_file() and p.name != MARKER_NAME)
    dirs = sorted(p.relative_to(tmp).as_posix() for p in paths if p.is_dir())
    record = {"written_by": "embedrt", "kind": kind, "files": files, "dirs": dirs}
    (tmp / MARKER_NAME).write_text(json.dumps(record, indent=1), encoding="utf-8")


def clean_stale_staging(parent: Path) -> list[Path]:
    """Remove what killed runs left: hidden staging dirs in `parent` and work dirs in the temp dir, whose PID is dead.

    A stale `.NAME.old-PID-*` whose NAME is missing is the previous good dir, moved aside just before the kill:
    it is put back instead. Returns the paths removed or restored.
    """
    done: list[Path] = []
    for path in _children(parent):
        match = _STAGING.match(path.name)
        if not match or not path.is_dir() or path.is_symlink() or pid_alive(int(match["pid"])):
            continue
        target = parent / match["name"]
        if match["what"] == "old" and not target.exists() and not target.is_symlink():
            with contextlib.suppress(OSError):
                os.replace(path, target)
                done.append(path)
                continue
        shutil.rmtree(path, ignore_errors=True)
        done.append(path)
    return done + clean_stale_work_dirs()


def _children(parent: Path) -> list[Path]:
    try:
        return list(parent.iterdir())
    except OSError:
        return []


def fingerprint(paths: list[Path]) -> str:
    """sha256 over the source files that define a model (weights and config), in name order."""
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        h.update(path.name.encode())
        h.update(file_sha256(path).encode())
    return h.hexdigest()


def model_file_record(path: Path) -> dict:
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}
