"""Reading small inputs whole, for `embedrt evaluate` and `embedrt visualize`.

Text files hold one text per line; JSONL files one object per line with a "text" field.
Tables (labelled data) are .csv/.tsv with a header line, or .jsonl. `embedrt embed` streams
files of any size instead: see embedrt/bulk/.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Sequence

from embedrt.errors import InputError


def read_texts(path: str | os.PathLike, field: str = "text") -> list[str]:
    """Texts from a .jsonl file ({"text": ...} per line), a .csv/.tsv file's `field` column, or any other file (one text per line)."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return [str(row[field]) for row in read_table(path, (field,), "--input")]
    lines = read_utf8(path, "--input", "a UTF-8 text or JSONL file").splitlines()
    if path.suffix.lower() != ".jsonl":
        return lines
    return [str(r[field]) for r in read_jsonl_lines(path, lines, required=(field,))]


def read_utf8(path: Path, option: str, what: str) -> str:
    """A file's text (a leading BOM dropped), or an InputError naming the option, the file and `what` to give."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{option} {path}: no such file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{option} {path}: unreadable ({exc}); give {what}.") from exc


def read_jsonl_lines(path: Path, lines: Sequence[str], required: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One JSON object per non-blank line; an error names the line and what is wrong with it."""
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, found {type(record).__name__}.")
        for key in required:
            if key not in record:
                raise InputError(f"{path}:{number}: no {key!r} field.")
            if not isinstance(record[key], str):
                raise InputError(f"{path}:{number}: {key!r} is {type(record[key]).__name__}, not a string.")
        records.append(record)
    return records


TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".jsonl": None}


def read_table(path: str | os.PathLike, required: Sequence[str], option: str = "--data") -> list[dict[str, Any]]:
    """Rows of a .csv/.tsv (header line) or .jsonl file, each with every `required` column present and non-empty."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InputError(f"{option} {path}: use a .csv, .tsv or .jsonl file (columns {', '.join(required)}).")
    raw = read_utf8(path, option, "a UTF-8 file")
    if not raw.strip():
        raise InputError(f"{option} {path}: the file is empty; it needs the columns {', '.join(required)} and at least one row.")
    if TABLE_SUFFIXES[suffix] is None:
        rows, first_line = read_jsonl_lines(path, raw.splitlines()), 1
    else:
        reader = csv.DictReader(io.StringIO(raw, newline=""), delimiter=TABLE_SUFFIXES[suffix])
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{option} {path}: no {missing[0]!r} column in the header (found {', '.join(reader.fieldnames or [])}); expected {', '.join(required)}.")
        rows, first_line = list(reader), 2
    if not rows:
        raise InputError(f"{option} {path}: a header but no rows.")
    for number, row in enumerate(rows, start=first_line):
        for column in required:
            if row.get(column) is None or row.get(column) == "":
                where = f"{path}:{number}" if TABLE_SUFFIXES[suffix] is None else f"{path}, row {number}"
                raise InputError(f"{option} {where}: no {column!r} value; every row needs {', '.join(required)}.")
    return rows


def table_columns(path: str | os.PathLike, option: str = "--data") -> list[str]:
    """The column names of a .csv/.tsv header, or the keys of a .jsonl file's first object."""
    rows = read_table(path, (), option)
    return list(rows[0].keys())
