"""Reading inputs from files and writing vectors to files, for the CLI commands.

Text files hold one text per line; JSONL files one object per line with a "text" field.
Vectors go to `.npy` (float32 (n, dim)) or `.jsonl` (one object per input with its vector).
Writes are atomic: a failed run leaves no output file behind.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from embedrt.errors import InputError


def read_texts(path: str | os.PathLike, field: str = "text") -> list[str]:
    """Texts from a .jsonl file ({"text": ...} per line) or any other file (one text per line)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"--input {path}: no such file.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--input {path}: unreadable ({exc}); give a UTF-8 text or JSONL file.") from exc
    lines = raw.splitlines()
    if path.suffix.lower() != ".jsonl":
        return lines
    return [str(r[field]) for r in read_jsonl_lines(path, lines, required=(field,))]


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


def check_output_path(path: str | os.PathLike | None) -> Path | None:
    """Fail before any work when the output cannot be written as asked."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".jsonl"):
        raise InputError(f"--output {path}: use a .npy or .jsonl file name.")
    if not path.parent.exists():
        raise InputError(f"--output {path}: the directory {path.parent} does not exist.")
    return path


def write_vectors(path: Path, vectors: np.ndarray, keys: Iterable[tuple[str, Any]] | None = None) -> Path:
    """`.npy`: the array. `.jsonl`: {key: value, "embedding": [...]} per row, keys like ("text", t) or ("path", p)."""
    tmp = path.with_name(f".{path.name}.partial")
    try:
        if path.suffix.lower() == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, vectors.astype(np.float32, copy=False))
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                key_list = list(keys) if keys is not None else [None] * len(vectors)
                for key, vector in zip(key_list, vectors):
                    record = {} if key is None else {key[0]: key[1]}
                    record["embedding"] = [round(float(x), 7) for x in vector]
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
