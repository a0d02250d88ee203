"""Feature rows in bulk: a .jsonl or .parquet file of a feature model's columns, streamed as Rows whose value is one row dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from embedrt.bulk.embedding import ChunkVectors, EmbedValues, Progress
from embedrt.bulk.rows import Row
from embedrt.bulk.sources import ARROW_BLOCK_ROWS, FileSource, _arrow_batches, json_record
from embedrt.errors import InputError, OutputError

FEATURE_SUFFIXES = (".jsonl", ".parquet")


class FeatureRecords(FileSource):
    """The model's columns of each row (other fields are left out; --id-column is carried beside the vector)."""

    def __init__(self, path: Path, columns: Sequence[str], id_column: str | None) -> None:
        if path.suffix.lower() not in FEATURE_SUFFIXES:
            raise InputError(f"--input {path}: feature rows come from a .jsonl or .parquet file (lists of ids do not fit a CSV cell).")
        super().__init__(path, None, id_column)
        self.columns = list(columns)
        if path.suffix.lower() == ".parquet":
            from embedrt.bulk.arrow import pyarrow

            pa = pyarrow()
            try:
                self._file = pa.parquet.ParquetFile(path)
            except (OSError, pa.ArrowException) as exc:
                raise InputError(f"--input {path}: not a readable Parquet file ({exc}).") from exc
            names = self._file.schema_arrow.names
            for column in self.columns + ([id_column] if id_column else []):
                if column not in names:
                    raise InputError(f"--input {path}: no {column!r} column (found {', '.join(names)}); the model takes {', '.join(self.columns)}.")
            if id_column:
                self.id_type = self._file.schema_arrow.field(id_column).type
            self.total = self._file.metadata.num_rows
        else:
            self.total = self._count_lines()

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "columns": self.columns}

    def rows(self) -> Iterator[Row]:
        yield from (self._parquet_rows() if self.path.suffix.lower() == ".parquet" else self._jsonl_rows())

    def _jsonl_rows(self) -> Iterator[Row]:
        index = 0
        for number, raw in self._lines():
            if not raw.strip():
                continue
            yield self._record(index, f"{self.path}:{number}", raw)
            index += 1

    def _record(self, index: int, where: str, raw: bytes) -> Row:
        parsed = json_record(index, where, raw, self.id_column)
        if isinstance(parsed, Row):
            return parsed
        record, row_id = parsed
        missing = [c for c in self.columns if c not in record]
        if missing:
            return Row(index, where, row_id, None, f"no {missing[0]!r} field; the model takes {', '.join(self.columns)}")
        return Row(index, where, row_id, {c: record[c] for c in self.columns})

    def _parquet_rows(self) -> Iterator[Row]:
        wanted = self.columns + ([self.id_column] if self.id_column and self.id_column not in self.columns else [])
        index = 0
        for batch in _arrow_batches(self._file.iter_batches(batch_size=ARROW_BLOCK_ROWS, columns=wanted, use_threads=False), self.path):
            values = {c: batch.column(c).to_pylist() for c in wanted}
            for k in range(batch.num_rows):
                where = f"{self.path}, row {index + 1}"
                row_id = values[self.id_column][k] if self.id_column else index
                if row_id is None:
                    yield Row(index, where, None, None, f"{self.id_column!r} is null")
                else:
                    yield Row(index, where, row_id, {c: values[c][k] for c in self.columns})
                index += 1


def feature_embedding(embedder) -> EmbedValues:
    """FeatureEmbedder.embed over a chunk of row dicts; a chunk it refuses is retried a row at a time to find the rows at fault."""

    def embed(rows: Sequence[dict], progress: Progress) -> ChunkVectors:
        try:
            return ChunkVectors(embedder.embed(list(rows), progress=progress))
        except (InputError, OutputError):
            vectors, failures = [], []
            for i, row in enumerate(rows):
                try:
                    vectors.append(embedder.embed([row])[0])
                except (InputError, OutputError) as exc:
                    failures.append((i, str(exc).replace(" row 0", "")))
            return ChunkVectors(np.stack(vectors) if vectors else np.zeros((0, embedder.dim), dtype=np.float32), failures)

    return embed
