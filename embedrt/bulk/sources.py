"""Streaming readers: every input as an iterator of Rows, read a block at a time, never whole.

.txt: one text a line. .jsonl (.ndjson, .json): one object a line (--text-column, --id-column). .csv/.tsv and
.parquet: read in record batches by pyarrow. Image paths and CLI arguments are lists already.
Ids are the row number by default; from --id-column, Parquet keeps the column's type and the
other formats give strings (one type for every part of the output).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from embedrt.bulk.arrow import pyarrow
from embedrt.bulk.rows import Row, decode_utf8, unicode_problem
from embedrt.errors import InputError
from embedrt.manifest import file_sha256

TEXT_SUFFIXES = (".txt", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet")
ARROW_BLOCK_ROWS = 4096  # rows per pyarrow record batch: memory stays a few MB whatever the file
COUNT_BLOCK = 1 << 20  # bytes per read when counting lines for the progress bar
PEEK_BYTES = 1 << 16  # enough of a file's start to tell JSON from plain text

log = logging.getLogger("embedrt")


class Source:
    """What the job needs of an input: its rows in order, a size for the progress bar, and what identifies it."""

    key = "id"  # the output column that says which input a vector belongs to
    id_type = "int64"  # "int64", "string", or a pyarrow type from a Parquet column
    total: int | None = None  # rows, when cheap to know (estimates are fine: it feeds the progress bar)
    label = "--input"

    def rows(self) -> Iterator[Row]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        raise NotImplementedError


class FileSource(Source):
    def __init__(self, path: Path, text_column: str | None, id_column: str | None) -> None:
        self.path = path
        self.text_column = text_column or "text"
        self.id_column = id_column
        if id_column:
            self.key, self.id_type = id_column, "string"  # the column keeps its name in the output
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise InputError(f"--input {path}: no such file.") from None
        except OSError as exc:
            raise InputError(f"--input {path}: unreadable ({exc}).") from None
        if not path.is_file():
            raise InputError(f"--input {path}: unreadable (not a regular file); give a {', '.join(TEXT_SUFFIXES)} file.")
        self._stat = stat

    def fingerprint(self) -> dict[str, Any]:
        # the content, not size and mtime: an edit that keeps both would resume with the old rows' vectors; reading
        # the file once more costs far less than embedding it
        try:
            digest = file_sha256(self.path)
        except OSError as exc:
            raise InputError(f"--input {self.path}: unreadable ({exc}).") from exc
        return {"path": str(self.path.resolve()), "bytes": self._stat.st_size, "sha256": digest,
                "text_column": self.text_column, "id_column": self.id_column}

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number from 1, raw line without its end), the first line's BOM dropped."""
        try:
            with open(self.path, "rb") as f:
                for number, raw in enumerate(f, start=1):
                    raw = raw.rstrip(b"\n").rstrip(b"\r")
                    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                        raw = raw[3:]
                    yield number, raw
        except OSError as exc:
            raise InputError(f"--input {self.path}: unreadable ({exc}).") from exc

    def _first_line(self) -> bytes:
        """The first non-blank line (or its first PEEK_BYTES), stripped, BOM dropped."""
        try:
            with open(self.path, "rb") as f:
                head = f.read(PEEK_BYTES)
        except OSError as exc:
            raise InputError(f"--input {self.path}: unreadable ({exc}).") from exc
        head = head.removeprefix(b"\xef\xbb\xbf")
        return next((line.strip() for line in head.splitlines() if line.strip()), b"")

    def _count_lines(self) -> int:
        count, last = 0, b"\n"
        with open(self.path, "rb") as f:
            while block := f.read(COUNT_BLOCK):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (last != b"\n")


class TextLines(FileSource):
    """One text a line; a blank line is the empty text."""

    def __init__(self, path: Path, text_column: str | None, id_column: str | None) -> None:
        if id_column or text_column:
            raise InputError(f"--input {path}: a text file has no columns; --text-column and --id-column need .jsonl, .csv, .tsv or .parquet.")
        super().__init__(path, None, None)
        self.total = self._count_lines()
        first = self._first_line()
        if first.startswith(b"{") and isinstance(_json_or_none(first), dict):  # a .txt is text, as asked; but say it
            log.warning("embedrt: --input %s: its first line is a JSON object; a text file is embedded a line at a time, JSON "
                        "and all. Rename it .jsonl to embed its %r field.", path, "text")

    def rows(self) -> Iterator[Row]:
        for number, raw in self._lines():
            text, problem = decode_utf8(raw)
            yield Row(number - 1, f"{self.path}:{number}", number - 1, text, problem)


def json_record(index: int, where: str, raw: bytes, id_column: str | None) -> tuple[dict[str, Any], Any] | Row:
    """One JSONL line as (its object, the row's id), or the Row that says what is wrong with it."""
    line, problem = decode_utf8(raw)
    if problem:
        return Row(index, where, index, None, problem)
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return Row(index, where, index, None, f"not valid JSON ({exc.msg})")
    if not isinstance(record, dict):
        return Row(index, where, index, None, f"expected a JSON object, found {type(record).__name__}")
    row_id: Any = index
    if id_column:
        row_id = record.get(id_column)
        if isinstance(row_id, bool) or not isinstance(row_id, (str, int)):
            return Row(index, where, None, None, f"{id_column!r} is {type(row_id).__name__ if id_column in record else 'missing'}; ids must be strings or integers")
        row_id = str(row_id)
    return record, row_id


class JsonLines(FileSource):
    """One JSON object a line (.jsonl, .ndjson, .json); blank lines are skipped and not counted as rows."""

    def __init__(self, path: Path, text_column: str | None, id_column: str | None) -> None:
        super().__init__(path, text_column, id_column)
        if self._first_line().startswith(b"["):  # a whole-file array would be one bad row: refuse it as a file
            raise InputError(f"--input {path}: a JSON array; give one JSON object a line (JSON lines), e.g. with "
                             f"`jq -c '.[]' {path} > {path.with_suffix('.jsonl')}`.")
        self.total = self._count_lines()

    def rows(self) -> Iterator[Row]:
        index = 0
        for number, raw in self._lines():
            if not raw.strip():
                continue
            where = f"{self.path}:{number}"
            yield self._row(index, where, raw)
            index += 1

    def _row(self, index: int, where: str, raw: bytes) -> Row:
        parsed = json_record(index, where, raw, self.id_column)
        if isinstance(parsed, Row):
            return parsed
        record, row_id = parsed
        text = record.get(self.text_column)
        if self.text_column not in record:
            return Row(index, where, row_id, None, f"no {self.text_column!r} field")
        if not isinstance(text, str):
            return Row(index, where, row_id, None, f"{self.text_column!r} is {type(text).__name__}, not a string")
        return Row(index, where, row_id, text, unicode_problem(text))


def _decoded(value: Any, column: str) -> tuple[str | None, str | None]:
    if value is None:
        return None, f"{column!r} is null"
    if isinstance(value, str):
        return value, unicode_problem(value)
    return decode_utf8(value)


class DelimitedTable(FileSource):
    """.csv (comma) or .tsv (tab) with a header line, parsed by pyarrow in blocks; quoted newlines allowed."""

    def __init__(self, path: Path, text_column: str | None, id_column: str | None) -> None:
        super().__init__(path, text_column, id_column)
        self.delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        header = self._header()
        for option, column in (("--text-column", self.text_column), ("--id-column", self.id_column)):
            if column and column not in header:
                raise InputError(f"--input {path}: no {column!r} column in the header (found {', '.join(header)}); pass {option} NAME.")
        self.total = max(0, self._count_lines() - 1)  # an estimate: quoted newlines count too

    def _header(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                first = f.readline().decode("utf-8-sig")  # the first line only: a bad byte further down is a row's problem
            return next(csv.reader([first], delimiter=self.delimiter), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--input {self.path}: unreadable header ({exc}); give a UTF-8 file whose first line names the columns.") from exc

    def rows(self) -> Iterator[Row]:
        pa = pyarrow()
        columns = [c for c in (self.text_column, self.id_column) if c]
        reader = pa.csv.open_csv(
            self.path,
            read_options=pa.csv.ReadOptions(block_size=1 << 20),
            parse_options=pa.csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True),
            convert_options=pa.csv.ConvertOptions(include_columns=columns, column_types={c: pa.binary() for c in columns}),
        )
        index = 0
        for batch in _arrow_batches(reader, self.path):
            texts = batch.column(self.text_column).to_pylist()
            ids = batch.column(self.id_column).to_pylist() if self.id_column else None
            for k, raw in enumerate(texts):
                where = f"{self.path}, row {index + 1}"
                row_id: Any = index
                if ids is not None:
                    row_id, problem = _decoded(ids[k], self.id_column)
                    if problem:
                        yield Row(index, where, None, None, problem)
                        index += 1
                        continue
                text, problem = _decoded(raw, self.text_column)
                yield Row(index, where, row_id, text, problem)
                index += 1


class ParquetTable(FileSource):
    """A Parquet file read a record batch at a time; ids keep the column's own type."""

    def __init__(self, path: Path, text_column: str | None, id_column: str | None) -> None:
        super().__init__(path, text_column, id_column)
        pa = pyarrow()
        try:
            self._file = pa.parquet.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"--input {path}: not a readable Parquet file ({exc}).") from exc
        schema = self._file.schema_arrow
        for option, column in (("--text-column", self.text_column), ("--id-column", self.id_column)):
            if column and column not in schema.names:
                raise InputError(f"--input {path}: no {column!r} column (found {', '.join(schema.names)}); pass {option} NAME.")
        text_type = schema.field(self.text_column).type
        if not (pa.types.is_string(text_type) or pa.types.is_large_string(text_type) or pa.types.is_binary(text_type) or pa.types.is_large_binary(text_type)):
            raise InputError(f"--input {path}: the column {self.text_column!r} holds {text_type}, not text; pass --text-column NAME.")
        if self.id_column:
            self.id_type = schema.field(self.id_column).type
        self.total = self._file.metadata.num_rows

    def rows(self) -> Iterator[Row]:
        pa = pyarrow()
        columns = [c for c in (self.text_column, self.id_column) if c]
        index = 0
        for batch in _arrow_batches(self._file.iter_batches(batch_size=ARROW_BLOCK_ROWS, columns=columns, use_threads=False), self.path):
            text_column = batch.column(self.text_column)
            if not (pa.types.is_binary(text_column.type) or pa.types.is_large_binary(text_column.type)):
                text_column = text_column.cast(pa.large_binary())  # zero-copy; decoded per row so bad UTF-8 names its row
            texts = text_column.to_pylist()
            ids = batch.column(self.id_column).to_pylist() if self.id_column else None
            for k, raw in enumerate(texts):
                where = f"{self.path}, row {index + 1}"
                row_id = ids[k] if ids is not None else index
                if row_id is None:
                    yield Row(index, where, None, None, f"{self.id_column!r} is null")
                else:
                    text, problem = _decoded(raw, self.text_column)
                    yield Row(index, where, row_id, text, problem)
                index += 1


def _arrow_batches(batches, path: Path):
    pa = pyarrow()
    try:
        yield from batches
    except pa.ArrowException as exc:
        raise InputError(f"--input {path}: unreadable ({exc}).") from exc


class TextArguments(Source):
    """TEXT arguments of the command line (undecodable argv bytes arrive as lone surrogates)."""

    label = "TEXT"

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.total = len(self.texts)

    def rows(self) -> Iterator[Row]:
        for i, text in enumerate(self.texts):
            yield Row(i, f"TEXT argument {i + 1}", i, text, unicode_problem(text))

    def fingerprint(self) -> dict[str, Any]:
        import hashlib

        digest = hashlib.sha256("\0".join(self.texts).encode("utf-8", "surrogatepass")).hexdigest()
        return {"arguments": len(self.texts), "sha256": digest}


class ImagePaths(Source):
    """Image files in order; the path goes beside each vector. A missing or broken file is the embedder's to report."""

    key = "path"
    id_type = "string"
    label = "--images"

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self.total = len(self.paths)

    def rows(self) -> Iterator[Row]:
        for i, path in enumerate(self.paths):
            name = str(path)
            yield Row(i, f"images[{i}] {name}", name, path, unicode_problem(name))

    def fingerprint(self) -> dict[str, Any]:
        import hashlib

        digest = hashlib.sha256()
        for path in self.paths:
            try:
                content = file_sha256(path)  # as for text inputs: an image edited in place is a different input
            except OSError:
                content = "unreadable"  # the embedder reports it, by index
            digest.update(f"{path}\0{content}\n".encode("utf-8", "surrogatepass"))
        return {"images": len(self.paths), "sha256": digest.hexdigest()}


_BY_SUFFIX = {".txt": TextLines, ".jsonl": JsonLines, ".ndjson": JsonLines, ".json": JsonLines, ".csv": DelimitedTable,
              ".tsv": DelimitedTable, ".parquet": ParquetTable}


def _json_or_none(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None


def open_text_file(path: str | os.PathLike, *, text_column: str | None = None, id_column: str | None = None) -> Source:
    """The streaming reader for an --input file, chosen by its suffix (any unknown suffix: one text a line)."""
    path = Path(path)
    kind = _BY_SUFFIX.get(path.suffix.lower(), TextLines)
    return kind(path, text_column, id_column)
