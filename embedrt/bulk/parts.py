"""One file per finished chunk in the output's format, and the final assembly of the parts into the output.

Parts are assembled by streaming them, one at a time, into the output: a .parquet gets one row group
per part, a .jsonl the parts' bytes in order, a .npy a header for the final row count and then each
part's raw float32 rows. The row count is known only once every chunk is done (skipped rows), which is
why .npy is assembled rather than written in place with a memmap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embedrt.bulk.arrow import pyarrow

OUTPUT_SUFFIXES = (".parquet", ".jsonl", ".npy")
VECTOR_COLUMN = "embedding"
TEXT_COLUMN = "text"
JSON_DIGITS = 7  # float32 carries about 7 significant digits; more only makes the file longer
COPY_ROWS = 65536  # rows of a .npy part copied at once during assembly


class Chunk:
    """One chunk's result: the key (id or path) of each embedded row, its text if kept, its vector."""

    def __init__(self, keys: list[Any], texts: list[str] | None, vectors: np.ndarray) -> None:
        self.keys, self.texts, self.vectors = keys, texts, vectors


class PartFormat:
    suffix = ""

    def __init__(self, key: str, id_type: Any, dim: int) -> None:
        self.key, self.id_type, self.dim = key, id_type, dim

    def write(self, chunk: Chunk, path: Path) -> None:
        raise NotImplementedError

    def assemble(self, parts: Sequence[Path], rows: int, path: Path) -> None:
        raise NotImplementedError


class ParquetParts(PartFormat):
    suffix = ".parquet"

    def schema(self, with_text: bool):
        pa = pyarrow()
        id_type = {"int64": pa.int64(), "string": pa.string()}.get(self.id_type, self.id_type)
        fields = [pa.field(self.key, id_type)]
        if with_text:
            fields.append(pa.field(TEXT_COLUMN, pa.string()))
        fields.append(pa.field(VECTOR_COLUMN, pa.list_(pa.float32(), self.dim)))
        return pa.schema(fields)

    def write(self, chunk: Chunk, path: Path) -> None:
        pa = pyarrow()
        schema = self.schema(chunk.texts is not None)
        vectors = np.ascontiguousarray(chunk.vectors, dtype=np.float32).reshape(-1)
        columns = [pa.array(chunk.keys, type=schema.field(self.key).type)]
        if chunk.texts is not None:
            columns.append(pa.array(chunk.texts, type=pa.string()))
        columns.append(pa.FixedSizeListArray.from_arrays(pa.array(vectors, type=pa.float32()), self.dim))
        table = pa.Table.from_arrays(columns, schema=schema)
        pa.parquet.write_table(table, path, **self.writer_options(table.schema))
        pa.default_memory_pool().release_unused()  # mimalloc keeps freed pages otherwise, and peak memory creeps up with the row count

    @staticmethod
    def writer_options(schema) -> dict:
        # a dictionary of float vectors is a large hash table that never pays: only ids and texts repeat
        return {"use_dictionary": [name for name in schema.names if name != VECTOR_COLUMN], "write_statistics": [n for n in schema.names if n != VECTOR_COLUMN]}

    def assemble(self, parts: Sequence[Path], rows: int, path: Path) -> None:
        pa = pyarrow()
        writer = None
        try:
            for part in parts:
                source = pa.parquet.ParquetFile(part)
                if writer is None:
                    writer = pa.parquet.ParquetWriter(path, source.schema_arrow, **self.writer_options(source.schema_arrow))
                for batch in source.iter_batches(batch_size=COPY_ROWS, use_threads=False):  # threads' heaps would keep ~50 MB more
                    writer.write_batch(batch)
                pa.default_memory_pool().release_unused()
            if writer is None:  # no rows at all: still a valid, empty file
                writer = pa.parquet.ParquetWriter(path, self.schema(False))
        finally:
            if writer is not None:
                writer.close()


class JsonlParts(PartFormat):
    suffix = ".jsonl"

    def write(self, chunk: Chunk, path: Path) -> None:
        with open(path, "w", encoding="utf-8") as f:
            for i, key in enumerate(chunk.keys):
                record: dict[str, Any] = {self.key: key}
                if chunk.texts is not None:
                    record[TEXT_COLUMN] = chunk.texts[i]
                record[VECTOR_COLUMN] = [round(float(x), JSON_DIGITS) for x in chunk.vectors[i]]
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def assemble(self, parts: Sequence[Path], rows: int, path: Path) -> None:
        with open(path, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)


class NpyParts(PartFormat):
    suffix = ".npy"

    def write(self, chunk: Chunk, path: Path) -> None:
        vectors = np.ascontiguousarray(chunk.vectors, dtype="<f4")
        with open(path, "wb") as f:
            # not np.save: its tofile() reports a full disk as "N requested and M written", without ENOSPC
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": vectors.shape})
            f.write(vectors.data)

    def assemble(self, parts: Sequence[Path], rows: int, path: Path) -> None:
        with open(path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, {"descr": "<f4", "fortran_order": False, "shape": (rows, self.dim)})
            for part in parts:
                vectors = np.load(part, mmap_mode="r")
                for start in range(0, len(vectors), COPY_ROWS):
                    out.write(np.ascontiguousarray(vectors[start : start + COPY_ROWS], dtype="<f4").tobytes())


FORMATS = {cls.suffix: cls for cls in (ParquetParts, JsonlParts, NpyParts)}
