"""The request queue for a FeatureEmbedder: rows from many callers merged into batches of up to max_batch_size rows.

Each caller's rows are checked in its own thread (errors name the column and the row of that request);
the queue then treats a row as one item of cost 1, as images are.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import numpy as np

from embedrt.runtime.batching import plan_batches
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.lanes import Lanes
from embedrt.runtime.features.rows import CheckedColumn, CheckedRows
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.queue.core import SENTENCE, EmbedFuture, RequestQueue

Row = tuple[np.ndarray, ...]  # one checked row: per column its values (an id list: its ids)


class FeatureQueue(RequestQueue):
    """The queue of a FeatureEmbedder: vectors equal to embedder.embed, batches shared across requests."""

    def __init__(self, embedder, **options: Any) -> None:
        self.embedder = embedder
        super().__init__(_FeatureEngine(embedder), **options)

    def submit(self, rows: Any) -> EmbedFuture:
        """A future of float32 (n, dim); bad rows raise InputError here, in the caller's thread."""
        start = time.perf_counter()
        return self._enqueue(split_rows(self.embedder.check(rows)), SENTENCE, time.perf_counter() - start)

    def embed(self, rows: Any) -> np.ndarray:
        return self.submit(rows).result()

    async def embed_async(self, rows: Any) -> np.ndarray:
        return await asyncio.wrap_future(self.submit(rows))


def split_rows(checked: CheckedRows) -> list[Row]:
    per_column = []
    for c in checked.columns:
        if c.starts is None:
            per_column.append(list(c.values))
        else:
            per_column.append([c.values[a:b] for a, b in zip(c.starts[:-1], c.starts[1:])])
    return list(zip(*per_column)) if per_column else []


def join_rows(columns: Sequence, rows: Sequence[Row]) -> CheckedRows:
    """Rows of several requests as one CheckedRows (the inverse of split_rows)."""
    joined = []
    for k, c in enumerate(columns):
        parts = [row[k] for row in rows]
        if c.kind == "id_list":
            starts = np.zeros(len(parts) + 1, dtype=np.int64)
            np.cumsum([len(p) for p in parts], out=starts[1:])
            joined.append(CheckedColumn(c, np.concatenate(parts) if parts else np.zeros(0, dtype=c.dtype), starts))
        else:
            joined.append(CheckedColumn(c, np.stack(parts)))
    return CheckedRows(tuple(joined), len(rows))


class _FeatureEngine:
    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.round_inputs = embedder.max_batch_size
        self.lanes = Lanes(embedder.backend)

    def cost(self, row: Row) -> int:
        return 1

    def plan(self, costs: Sequence[int]) -> list[np.ndarray]:
        size = self.embedder.max_batch_size  # rows all cost the same: the budget is the batch size
        return plan_batches(costs, max_batch_tokens=size, max_batch_size=size, padded=False)

    def prepare(self, items: list[Row], wants: set[str]) -> dict[str, np.ndarray]:
        checked = join_rows(self.embedder.columns, items)
        return next(checked.feeds(max(checked.n, 1)))[1]

    def run(self, inputs: dict[str, np.ndarray], wants: set[str], engine: Backend) -> dict[str, np.ndarray]:
        output = self.embedder.output
        return {"vectors": engine.run(inputs, [output])[output]}

    def rows(self, out: dict[str, np.ndarray], items: list[Row], wants: list[str]) -> list[np.ndarray]:
        return list(out["vectors"])

    def collect(self, results: list[np.ndarray], want: str) -> np.ndarray:
        if not results:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        vectors = np.stack(results).astype(np.float32, copy=False)
        check_finite(vectors, "rows")
        return vectors
