"""The bulk loop: rows in fixed chunks -> embed -> one part per chunk -> journal; at the end, assemble the output.

Chunk k always holds input rows [k * chunk_rows, (k + 1) * chunk_rows), so a rerun skips the rows of
the chunks its journal lists and carries on: every row lands in the output exactly once, with the vector
an uninterrupted run gives. Memory is bounded by a chunk, whatever the input's size.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO


from embedrt.bulk.embedding import EmbedValues
from embedrt.bulk.journal import WorkDir, output_error
from embedrt.bulk.parts import FORMATS, JSON_DIGITS, OUTPUT_SUFFIXES, TEXT_COLUMN, VECTOR_COLUMN, Chunk
from embedrt.bulk.progress import Progress
from embedrt.bulk.rows import Row
from embedrt.bulk.sources import Source
from embedrt.errors import InputError

DEFAULT_CHUNK_ROWS = 10_000  # rows per part: a few MB of vectors, sorted by length within for the batcher
SKIPPED_SUFFIX = ".skipped.jsonl"
JSON_BYTES_PER_FLOAT = 11  # "-0.0123456, " in a .jsonl vector
ECHO_SKIPPED = 10  # skipped rows also told on stderr, the first few of a run; all of them are in the side file


@dataclass
class Summary:
    rows: int = 0  # input rows read, this run and earlier ones
    written: int = 0
    skipped: int = 0
    truncated: int = 0
    resumed_at: int = 0  # chunks an earlier run had finished


def check_output(output: Path) -> None:
    """What can be known about --output before any work: its kind, and a directory to write in."""
    if output.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"--output {output}: use a {', '.join(OUTPUT_SUFFIXES)} file name.")
    if output.is_symlink():
        # the output is renamed into place, which would replace the link and leave its target stale: refuse, never guess
        raise InputError(f"--output {output}: a symbolic link (to {os.readlink(output)}); give the real path of the file to write.")
    if output.is_dir():
        raise InputError(f"--output {output}: a directory; give a file name inside it, e.g. {output / ('vectors' + output.suffix)}.")
    if not output.parent.is_dir():
        raise InputError(f"--output {output}: the directory {output.parent} does not exist.")


class BulkJob:
    """`open()` does every check that needs no model (output, lock, journal, disk space); `run()` embeds."""

    def __init__(self, output: Path, source: Source, *, model: dict[str, Any], options: dict[str, Any], dim: int,
                 chunk_rows: int = DEFAULT_CHUNK_ROWS, keep_text: bool = False, on_error: str = "raise", overwrite: bool = False) -> None:
        if chunk_rows < 1:
            raise InputError(f"--chunk-rows {chunk_rows}: must be >= 1.")
        self.output, self.source, self.dim = output, source, dim
        self.chunk_rows, self.keep_text, self.on_error, self.overwrite = chunk_rows, keep_text, on_error, overwrite
        self.fingerprint = {"model": model, "input": source.fingerprint(),
                            "options": {**options, "--chunk-rows": chunk_rows, "--keep-text": keep_text, "--on-error": on_error}}
        self.format = FORMATS[output.suffix.lower()](source.key, source.id_type, dim)
        self.work = WorkDir(output)
        self.skipped_file = output.with_name(output.name + SKIPPED_SUFFIX)
        self.journal: dict[str, Any] = {}
        self._echoed = 0

    # -- before the model is loaded -------------------------------------------------------------------
    def open(self) -> bool:
        """Lock the output and read its journal; True when the job is already finished (nothing to do)."""
        check_output(self.output)
        existed = self.work.path.is_dir()
        self.work.lock()
        try:
            finished = self._open()
        except BaseException:
            self.work.unlock()
            if not existed:  # refused before any work: leave no empty work dir behind
                self.work.delete()
            raise
        if finished:
            self.work.unlock()
        return finished

    def _open(self) -> bool:
        journal = self.work.load()
        self._keeps_finished = False  # a finished journal (and its output) kept on disk until this run's first chunk
        if self.overwrite:
            # OUT and its skipped rows stay until the new output replaces them (_assemble); only a run's parts go
            self._keeps_finished = bool(journal and journal.get("finished"))
            journal = None
        elif journal is None and self.output.exists():
            raise InputError(f"--output {self.output} exists and no unfinished job is writing it; pass --overwrite to replace it.")
        elif journal is not None:
            changed = _changes(journal["fingerprint"], self.fingerprint)
            if changed:
                state = "a finished" if journal.get("finished") else "an unfinished"
                raise InputError(
                    f"--output {self.output}: {state} job wrote it with a different {'; '.join(changed)}. Run the same "
                    "command as before to continue it, or pass --overwrite to start over."
                )
            if journal.get("finished") and self.output.is_file():
                self.work.remove_parts()  # strays of an --overwrite run killed before its first chunk
                return True
            if journal.get("finished"):
                raise InputError(f"--output {self.output}: the job finished but the file is gone; pass --overwrite to embed again.")
        self.journal = journal or {"fingerprint": self.fingerprint, "chunks": [], "input_done": False, "finished": False}
        self._check_space()  # before anything is removed: a refused run changes nothing
        self.work.remove_parts(keep=len(self.journal["chunks"]))
        if journal is None and not self._keeps_finished:
            self.work.commit(self.journal)
        return False

    def _check_space(self) -> None:
        if self.source.total is None:
            return
        per_row = self.dim * (JSON_BYTES_PER_FLOAT if self.format.suffix == ".jsonl" else 4)
        done = sum(c["rows"] for c in self.journal["chunks"])
        needed = per_row * (max(0, self.source.total - done) + self.source.total)  # the parts, then the assembled copy
        free = shutil.disk_usage(self.work.path).free + self.work.parts_bytes(keep=len(self.journal["chunks"]))  # parts about to be redone
        if needed > free:
            raise InputError(
                f"--output {self.output}: about {needed / 1e6:.1f} MB are needed (the parts, then the assembled file) and "
                f"the device has {free / 1e6:.1f} MB free; free some space or choose another --output."
            )

    # -- the work ---------------------------------------------------------------------------------------
    def run(self, embed_values: EmbedValues, *, unit: str = "text", quiet: bool = False) -> Summary:
        chunks = self.journal["chunks"]
        summary = _totals(chunks)
        summary.resumed_at = len(chunks)
        progress = Progress(self.source.total, unit, quiet=quiet, done=summary.rows)
        try:
            with _chunk_warnings_muted():
                for index, rows in enumerate(fixed_chunks(self.source.rows(), self.chunk_rows, skip=summary.rows), start=len(chunks)):
                    counted = _Counted(progress)
                    entry = self._chunk(index, rows, embed_values, counted)
                    chunks.append(entry)
                    self.work.commit(self.journal)
                    _add(summary, entry)
                    counted.settle(entry["rows"])
            progress.close()
            self.journal["input_done"] = True
            self.work.commit(self.journal)
            self._assemble(summary)
        except BaseException:
            self._drop_unstarted()
            raise
        finally:
            self.work.unlock()
        return summary

    def abandon(self) -> None:
        """After open(), instead of run() (the model failed to load): the work dir as this run found it, the lock released."""
        self._drop_unstarted()
        self.work.unlock()

    def _drop_unstarted(self) -> None:
        """When no chunk was finished: nothing to resume, so nothing of this run is left behind."""
        if self.journal["chunks"]:
            return  # an earlier run's chunks: kept for the next
        if self._keeps_finished:  # the finished journal describing OUT stays
            self.work.remove_parts()
        else:
            self.work.unlock()
            self.work.delete()

    def _chunk(self, index: int, rows: list[Row], embed_values: EmbedValues, progress: Callable[[int], None]) -> dict[str, Any]:
        bad = [(r, r.problem) for r in rows if r.problem is not None]
        good = [r for r in rows if r.problem is None]
        if bad and self.on_error == "raise":
            raise row_error(bad[0][0], bad[0][1], self.skipped_file)
        result = embed_values([r.value for r in good], progress)
        failed = {i for i, _ in result.failures}
        if result.failures:
            if self.on_error == "raise":
                position, reason = result.failures[0]
                raise row_error(good[position], reason, self.skipped_file)
            bad += [(good[i], reason) for i, reason in result.failures]
        kept = [r for i, r in enumerate(good) if i not in failed]
        texts = [r.value for r in kept] if self.keep_text else None
        self.work.write(self.work.part(index, self.format.suffix), lambda tmp: self.format.write(Chunk([r.id for r in kept], texts, result.vectors), tmp))
        if bad:
            bad.sort(key=lambda b: b[0].number)
            for r, why in bad[: max(0, ECHO_SKIPPED - self._echoed)]:
                print(f"embedrt: skipped {r.where}: {why}", file=sys.stderr)
            self._echoed += len(bad)
            lines = "".join(json.dumps({"row": r.number, "where": r.where, self.source.key: r.id, "reason": why}, ensure_ascii=False) + "\n" for r, why in bad)
            self.work.write(self.work.skipped(index), lambda tmp: tmp.write_text(lines, encoding="utf-8", errors="backslashreplace"))
        return {"rows": len(rows), "written": len(kept), "skipped": len(bad), "truncated": result.truncated}

    def _assemble(self, summary: Summary) -> None:
        chunks = self.journal["chunks"]
        parts = [self.work.part(i, self.format.suffix) for i in range(len(chunks))]
        assembled = self.work.path / f"assembled{self.format.suffix}"
        assembled_skipped = self.work.path / f"assembled{SKIPPED_SUFFIX}"
        skipped = [self.work.skipped(i) for i, c in enumerate(chunks) if c["skipped"]]
        try:
            # both files whole in the work dir first; an earlier output is replaced only now, by renames
            self.work.write(assembled, lambda tmp: self.format.assemble(parts, summary.written, tmp))
            if skipped:
                self.work.write(assembled_skipped, lambda tmp: _concatenate(skipped, tmp))
            os.replace(assembled, self.output)
            if skipped:
                os.replace(assembled_skipped, self.skipped_file)
            elif self.skipped_file.is_file() and not self.skipped_file.is_symlink():
                self.skipped_file.unlink()  # an earlier output's skipped rows: not this one's
        except OSError as exc:
            raise output_error(self.output, exc, "assembling the parts") from exc
        self.journal["finished"] = True
        self.work.commit(self.journal)
        self.work.remove_parts()


def fixed_chunks(rows: Iterator[Row], size: int, *, skip: int = 0) -> Iterator[list[Row]]:
    """Lists of `size` rows (the last may be shorter), after dropping the first `skip` rows."""
    rows = islice(rows, skip, None)
    while chunk := list(islice(rows, size)):
        yield chunk


def row_error(row: Row, reason: str, skipped_file: Path) -> InputError:
    return InputError(f"{row.where}: {reason}. Fix the row, or pass --on-error skip to record bad rows in {skipped_file} and go on.")


def stream_jsonl(source: Source, embed_values: EmbedValues, *, chunk_rows: int, on_error: str, quiet: bool, unit: str, out: TextIO = sys.stdout) -> Summary:
    """No --output: JSONL on stdout as chunks finish ({"text"|"path": ..., "embedding": [...]}); nothing to resume."""
    summary = Summary()
    key = "path" if source.key == "path" else TEXT_COLUMN
    progress = Progress(source.total, unit, quiet=quiet or (source.total or 0) < chunk_rows)
    for rows in fixed_chunks(source.rows(), chunk_rows):
        good = [r for r in rows if r.problem is None]
        bad = [(r, r.problem) for r in rows if r.problem is not None]
        counted = _Counted(progress)
        result = embed_values([r.value for r in good], counted) if good else None
        if result is not None:
            bad += [(good[i], why) for i, why in result.failures]
        if bad and on_error == "raise":
            first = min(bad, key=lambda b: b[0].number)
            raise InputError(f"{first[0].where}: {first[1]}. Fix it, or pass --on-error skip to leave it out and go on.")
        for r, why in sorted(bad, key=lambda b: b[0].number):
            print(f"embedrt: skipped {r.where}: {why}", file=sys.stderr)
        failed = {i for i, _ in result.failures} if result is not None else set()
        kept = [r for i, r in enumerate(good) if i not in failed]
        for r, vector in zip(kept, result.vectors if result is not None else []):
            value = str(r.value) if source.key == "path" else r.value
            out.write(json.dumps({key: value, VECTOR_COLUMN: [round(float(x), JSON_DIGITS) for x in vector]}, ensure_ascii=False) + "\n")
        out.flush()
        _add(summary, {"rows": len(rows), "written": len(kept), "skipped": len(bad), "truncated": result.truncated if result else 0})
        counted.settle(len(rows))
    if not progress.quiet:
        progress.close()
    return summary


class _Counted:
    """Passes the embedder's progress on, never past a chunk's rows; `settle` adds what it did not report (bad rows)."""

    def __init__(self, progress: Progress) -> None:
        self.progress, self.reported = progress, 0

    def __call__(self, n: int) -> None:
        self.reported += n
        self.progress.update(n)

    def settle(self, rows: int) -> None:
        if rows > self.reported:
            self.progress.update(rows - self.reported)


def _concatenate(parts: list[Path], path: Path) -> None:
    with open(path, "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)


def _changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two fingerprints, in words: "model (sha256: 'ab..' -> 'cd..')", "input /in.txt (bytes: 10 -> 12)",
    "--text-column ('a' -> 'b')"."""
    changed = []
    for section in ("model", "input", "options"):
        old, new = before.get(section, {}), now.get(section, {})
        name = f"{section} {new['path']}" if section == "input" and "path" in new else section
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                label = key if section == "options" else f"{name} ({key}"
                detail = f"{old.get(key)!r} -> {new.get(key)!r}"
                changed.append(f"{label} ({detail})" if section == "options" else f"{label}: {detail})")
    return changed


def _totals(chunks: list[dict[str, Any]]) -> Summary:
    summary = Summary()
    for entry in chunks:
        _add(summary, entry)
    return summary


def _add(summary: Summary, entry: dict[str, Any]) -> None:
    summary.rows += entry["rows"]
    summary.written += entry["written"]
    summary.skipped += entry["skipped"]
    summary.truncated += entry["truncated"]


class _chunk_warnings_muted:
    """The runtime warns about truncation per call with indices into that call; a job reports one total by row instead."""

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "longer than the model" not in str(record.msg)

    def __enter__(self):
        self.filter = self._Filter()
        logging.getLogger("embedrt").addFilter(self.filter)

    def __exit__(self, *exc):
        logging.getLogger("embedrt").removeFilter(self.filter)
