"""What `embedrt visualize` draws: items (texts or image paths) to embed, or precomputed vectors, and their labels.

  --input table.csv|.tsv|.jsonl   a column of texts (or, for an image export, image paths relative
                                  to the file) and, optionally, a label column
  --input texts.txt               one text (or image path) a line; --labels FILE one label a line
  --input vectors.npy             a float (n, dim) array; --labels FILE one label a line
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedrt.errors import InputError
from embedrt.input_files import TABLE_SUFFIXES, read_table, read_texts, table_columns

LABEL_COLUMN = "label"


@dataclass
class Points:
    items: list[str]  # texts or image paths; the hover text of each point
    labels: list[str] | None
    vectors: np.ndarray | None = None  # given in a .npy file: nothing to embed


def read_points(path: str | os.PathLike, *, labels: str | None = None, column: str = "text", relative_paths: bool = False) -> Points:
    """Items or vectors from --input, labels from a column of it or from a file; every count checked."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        vectors = _read_npy(path)
        points = Points([f"#{i}" for i in range(len(vectors))], None, vectors)
        if labels is not None and not Path(labels).is_file():
            raise InputError(f"--labels {labels}: no such file; with a .npy input, give a file with one label a line.")
    elif suffix in TABLE_SUFFIXES:
        columns = table_columns(path, "--input")
        if column not in columns:
            raise InputError(f"--input {path}: no {column!r} column (found {', '.join(columns)}); name the column with --column.")
        rows = read_table(path, (column,), "--input")
        items = [str(r[column]) for r in rows]
        if relative_paths:
            items = [str((path.parent / item).resolve()) for item in items]
        points = Points(items, None)
        label_column = labels if labels is not None else (LABEL_COLUMN if LABEL_COLUMN in columns else None)
        if label_column is not None and label_column in columns:
            points.labels = [str(r.get(label_column) if r.get(label_column) is not None else "") for r in rows]
            labels = None
        elif labels is not None and not Path(labels).is_file():
            raise InputError(f"--labels {labels}: not a column of {path} (found {', '.join(columns)}) and not a file.")
    else:
        items = read_texts(path)
        if not any(item.strip() for item in items):
            raise InputError(f"--input {path}: the file is empty; give one text a line.")
        if relative_paths:
            items = [str((path.parent / item).resolve()) for item in items]
        points = Points(items, None)
        if labels is not None and not Path(labels).is_file():
            raise InputError(f"--labels {labels}: no such file; with a {suffix or 'text'} input, give a file with one label a line.")
    if labels is not None and points.labels is None:
        points.labels = _read_label_file(Path(labels))
    if points.labels is not None and len(points.labels) != len(points.items):
        raise InputError(f"--labels: {len(points.labels)} label(s) for {len(points.items)} input(s) in {path}; give one label per input.")
    return points


def _read_npy(path: Path) -> np.ndarray:
    try:
        vectors = np.load(path, allow_pickle=False)
    except FileNotFoundError as exc:
        raise InputError(f"--input {path}: no such file.") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"--input {path}: not a readable .npy array ({exc}).") from exc
    if vectors.ndim != 2 or len(vectors) == 0 or not np.issubdtype(vectors.dtype, np.number):
        raise InputError(f"--input {path}: expected a non-empty numeric (n, dim) array, found shape {vectors.shape} of {vectors.dtype}.")
    return vectors


def _read_label_file(path: Path) -> list[str]:
    lines = read_texts(path)
    while lines and not lines[-1].strip():
        lines.pop()  # a trailing blank line is not a label
    return lines
