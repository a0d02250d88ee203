"""Labelled data for `embedrt evaluate`, read from CSV/TSV (header line) or JSONL, and which task a file is for.

  sts             text1, text2, score      sentence pairs with a similarity score (any scale)
  retrieval       query, document          one relevant (query, document) pair a row; a query
                                           may have several rows; documents of all rows (and
                                           of --corpus) form the collection searched
  classification  text, label              labelled items, scored by leave-one-out k-NN
  parity          text                     any texts (or a .txt file, one a line)

For an image export, classification and parity read an `image` column instead of `text`:
image paths, relative to the data file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from embedrt.errors import InputError
from embedrt.input_files import TABLE_SUFFIXES, read_table, read_texts, table_columns

TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "sts": ("text1", "text2", "score"),
    "retrieval": ("query", "document"),
    "classification": ("text", "label"),
    "parity": ("text",),
}
TASKS = tuple(TASK_COLUMNS)


@dataclass
class StsPairs:
    text1: list[str]
    text2: list[str]
    scores: list[float]


@dataclass
class RetrievalSet:
    queries: list[str]
    documents: list[str]
    relevant: list[set[int]]  # per query, indices into documents


@dataclass
class LabelledItems:
    texts: list[str]
    labels: list[str]


@dataclass
class Texts:
    texts: list[str]


Dataset = StsPairs | RetrievalSet | LabelledItems | Texts


def task_columns(task: str, items: str = "text") -> tuple[str, ...]:
    """The columns a task reads; `items` "image" for an image export, whose items are image paths."""
    if items != "text" and task in ("sts", "retrieval"):
        raise InputError(f"--task {task} compares texts; an {items} export is evaluated on classification or parity.")
    return tuple(items if c == "text" else c for c in TASK_COLUMNS[task])


def detect_task(path: str | os.PathLike, items: str = "text") -> str:
    """The task a file's columns are for, the first match in TASK_COLUMNS order."""
    path = Path(path)
    if path.suffix.lower() not in TABLE_SUFFIXES:
        return "parity"
    columns = set(table_columns(path))
    tasks = [t for t in TASK_COLUMNS if items == "text" or t not in ("sts", "retrieval")]
    for task in tasks:
        if set(task_columns(task, items)) <= columns:
            return task
    expected = "; ".join(f"{t}: {', '.join(task_columns(t, items))}" for t in tasks)
    raise InputError(f"--data {path}: columns {', '.join(sorted(columns))} match no task; expected one of ({expected}).")


def read_dataset(path: str | os.PathLike, task: str | None = None, corpus: str | os.PathLike | None = None, items: str = "text") -> tuple[str, Dataset]:
    """(task, data) from a labelled file; `task` None means detect it from the columns."""
    task = task or detect_task(path, items)
    if task not in TASK_COLUMNS:
        raise InputError(f"--task {task!r} is not one of {', '.join(TASKS)}.")
    if corpus is not None and task != "retrieval":
        raise InputError("--corpus adds documents to a retrieval task only.")
    located = (lambda item: str(Path(path).parent / item)) if items == "image" else str
    if task == "parity" and Path(path).suffix.lower() not in TABLE_SUFFIXES:
        texts = [located(t) for t in read_texts(path) if t.strip()]
        if not texts:
            raise InputError(f"--data {path}: no texts in it.")
        return task, Texts(texts)
    rows = read_table(path, task_columns(task, items))
    if task == "sts":
        return task, StsPairs([str(r["text1"]) for r in rows], [str(r["text2"]) for r in rows], _scores(path, rows))
    if task == "classification":
        return task, LabelledItems([located(r[items]) for r in rows], [str(r["label"]) for r in rows])
    if task == "parity":
        return task, Texts([located(r[items]) for r in rows])
    return task, _retrieval(rows, read_texts(corpus) if corpus is not None else [])


def _scores(path, rows) -> list[float]:
    scores = []
    for number, row in enumerate(rows, start=1):
        try:
            scores.append(float(row["score"]))
        except (TypeError, ValueError) as exc:
            raise InputError(f"--data {path}: row {number} has score {row['score']!r}, not a number.") from exc
    return scores


def _retrieval(rows, extra_documents: list[str]) -> RetrievalSet:
    queries: dict[str, int] = {}
    documents: dict[str, int] = {}
    relevant: list[set[int]] = []
    for row in rows:
        q = queries.setdefault(str(row["query"]), len(queries))
        d = documents.setdefault(str(row["document"]), len(documents))
        if q == len(relevant):
            relevant.append(set())
        relevant[q].add(d)
    for text in extra_documents:
        if text.strip():
            documents.setdefault(text, len(documents))
    return RetrievalSet(list(queries), list(documents), relevant)
