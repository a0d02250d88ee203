"""Rows of a feature model (user or item tower): checked against the manifest's columns, then cut into engine feeds.

Rows come as a dict of columns, a list of row dicts, a pandas DataFrame or a pyarrow Table. Every check
runs on the whole input before the engine sees any of it, and names the column and the row: ONNX
Runtime's own out-of-range Gather error names neither.

Variable-length id lists reach the graph in one of two layouts (FeatureColumn.layout):
- "offsets": the flat ids of the batch (NAME, int) and where each row starts (NAME_offsets, (batch,)),
  what nn.EmbeddingBag takes and exports to ONNX (a Loop over the bags, empty rows allowed);
- "padded": (batch, longest in the batch) filled with pad_id, for modules that mask on the pad id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from embedrt.errors import InputError
from embedrt.manifest import FeatureColumn, TensorSpec

ID_KINDS = ("id", "id_list")
KINDS = ("id", "id_list", "float")
LAYOUTS = ("offsets", "padded")


def offsets_name(column: FeatureColumn) -> str:
    return f"{column.name}_offsets"


def graph_inputs(columns: Sequence[FeatureColumn]) -> tuple[TensorSpec, ...]:
    """The graph's input tensors for these columns (the manifest's `inputs`), batch axis first."""
    specs: list[TensorSpec] = []
    for c in columns:
        if c.kind == "id_list" and c.layout == "offsets":
            specs += [TensorSpec(c.name, c.dtype, (f"{c.name}_values",)), TensorSpec(offsets_name(c), "int64", ("batch",))]
        elif c.kind == "id_list":
            specs.append(TensorSpec(c.name, c.dtype, ("batch", f"{c.name}_length")))
        else:
            specs.append(TensorSpec(c.name, c.dtype, ("batch", *c.shape)))
    return tuple(specs)


@dataclass(frozen=True)
class CheckedColumn:
    """One column after its checks: fixed columns as one array (n, *shape); id lists flat with row starts."""

    column: FeatureColumn
    values: np.ndarray  # (n, *shape), or the flat ids of every row for an id list
    starts: np.ndarray | None = None  # id lists: (n + 1,) row i is values[starts[i]:starts[i + 1]]


@dataclass(frozen=True)
class CheckedRows:
    columns: tuple[CheckedColumn, ...]
    n: int

    def take(self, rows: slice) -> "CheckedRows":
        """Rows start .. stop - 1 (step 1) as their own CheckedRows."""
        return CheckedRows(tuple(_take(c, rows) for c in self.columns), rows.stop - rows.start)

    def feeds(self, max_batch_size: int) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
        """(rows, engine feed) per batch of at most max_batch_size rows, in the rows' order."""
        for start in range(0, self.n, max_batch_size):
            rows = slice(start, min(start + max_batch_size, self.n))
            yield rows, {name: array for c in self.columns for name, array in _feed(c, rows).items()}


def _take(c: CheckedColumn, rows: slice) -> CheckedColumn:
    if c.starts is None:
        return CheckedColumn(c.column, c.values[rows])
    starts = c.starts[rows.start : rows.stop + 1]
    return CheckedColumn(c.column, c.values[starts[0] : starts[-1]], starts - starts[0])


def _feed(checked: CheckedColumn, rows: slice) -> dict[str, np.ndarray]:
    c = checked.column
    if checked.starts is None:
        return {c.name: checked.values[rows]}
    starts = checked.starts[rows.start : rows.stop + 1]
    flat = checked.values[starts[0] : starts[-1]]
    if c.layout == "offsets":
        return {c.name: flat, offsets_name(c): (starts[:-1] - starts[0]).astype(np.int64)}
    lengths = np.diff(starts)
    padded = np.full((len(lengths), max(int(lengths.max()), 1)), c.pad_id, dtype=flat.dtype)
    padded[np.arange(padded.shape[1]) < lengths[:, None]] = flat  # row-major mask order is the rows' order
    return {c.name: padded}


def to_columns(rows: Any) -> dict[str, Any]:
    """A dict of columns from any of the accepted row containers (pandas and pyarrow are read without importing them)."""
    if isinstance(rows, Mapping):
        return dict(rows)
    if hasattr(rows, "to_pydict") and hasattr(rows, "column_names"):  # pyarrow Table / RecordBatch
        return {name: rows.column(name).to_numpy(zero_copy_only=False) for name in rows.column_names}
    if hasattr(rows, "columns") and hasattr(rows, "to_dict") and hasattr(rows, "iloc"):  # pandas DataFrame
        return {str(name): rows[name].to_numpy() for name in rows.columns}
    if isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
        if not rows:
            return {}
        names: list[str] = []
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise InputError(f"rows[{i}] is a {type(row).__name__}; a list of rows holds dicts of column -> value.")
            names += [k for k in row if k not in names]
        out: dict[str, list] = {name: [] for name in names}
        for i, row in enumerate(rows):
            for name in names:
                if name not in row:
                    raise InputError(f"rows[{i}] has no column {name!r} (other rows have it); give every row every column.")
                out[name].append(row[name])
        return out
    raise InputError(
        f"rows must be a dict of columns, a list of row dicts, a pandas DataFrame or a pyarrow Table, not {type(rows).__name__}."
    )


def check_rows(columns: Sequence[FeatureColumn], rows: Any) -> CheckedRows:
    """Every column present, known, of one length, of its kind, dtype, shape and range; raises InputError naming column and row."""
    data = to_columns(rows)
    wanted = [c.name for c in columns]
    unknown = [name for name in data if name not in wanted]
    if unknown:
        raise InputError(f"column {unknown[0]!r} is not an input of this model (it takes {', '.join(wanted)}); drop it.")
    missing = [name for name in wanted if name not in data]
    if missing:
        raise InputError(f"column {missing[0]!r} is missing; this model takes the columns {', '.join(wanted)}.")
    n = None
    for name in wanted:
        length = len(data[name])
        if n is None:
            n = length
        elif length != n:
            raise InputError(f"column {name!r} has {length} rows but column {wanted[0]!r} has {n}; give every column one value a row.")
    checked = tuple(check_column(c, data[c.name]) for c in columns)
    return CheckedRows(checked, int(n or 0))


def check_column(column: FeatureColumn, values: Any) -> CheckedColumn:
    if column.kind == "id_list":
        return _check_id_list(column, values)
    array = _fixed_array(column, values)
    if column.kind == "float":
        bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"column {column.name!r} row {row}: NaN or Inf in a float feature ({int(bad.sum())} rows in all); fill or drop them.")
    else:
        _check_range(column, array.reshape(len(array), -1), row_of=lambda k: k)
    return CheckedColumn(column, array)


def _fixed_array(column: FeatureColumn, values: Any) -> np.ndarray:
    """(n, *shape) of the column's dtype; a ragged row, a string or a float in an id column is refused naming the row."""
    try:
        array = np.asarray(values)
    except ValueError:  # ragged nested lists
        array = np.asarray(list(values), dtype=object)
    if array.dtype == object:
        for row, value in enumerate(array):
            _row_array(column, row, value)  # raises on the first bad row
        array = np.stack([_row_array(column, row, value) for row, value in enumerate(array)]) if len(array) else array
    if array.ndim == 0:
        raise InputError(f"column {column.name!r} is a single value; give one value a row (a list or array).")
    if tuple(array.shape[1:]) != tuple(column.shape):
        raise InputError(
            f"column {column.name!r} row 0: {_shape_text(array.shape[1:])} a row, but this model takes {_shape_text(column.shape)}."
        )
    return _cast(column, array, rows_offset=0)


def _row_array(column: FeatureColumn, row: int, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError:
        arr = np.asarray(value, dtype=object)
    if arr.dtype == object or tuple(arr.shape) != tuple(column.shape):
        what = "ragged or nested values" if arr.dtype == object else _shape_text(arr.shape)
        raise InputError(f"column {column.name!r} row {row}: {what}, but this model takes {_shape_text(column.shape)} a row.")
    return _cast(column, arr[None], rows_offset=row)[0]


def _cast(column: FeatureColumn, array: np.ndarray, *, rows_offset: int) -> np.ndarray:
    kind = array.dtype.kind
    if column.kind == "float":
        if kind not in "fiu" or kind == "b":
            raise InputError(f"column {column.name!r} row {rows_offset + _first_row(array)}: {array.dtype} values in a float feature; give numbers.")
        return np.ascontiguousarray(array, dtype=column.dtype)
    if kind not in "iu":
        what = "floats" if kind == "f" else f"{array.dtype} values"
        raise InputError(
            f"column {column.name!r} row {rows_offset + _first_row(array)}: {what} in an id column; ids are integers "
            f"(0 .. {column.num_embeddings - 1 if column.num_embeddings else 'n'}), map them to the model's id space first."
        )
    return np.ascontiguousarray(array, dtype=column.dtype)


def _first_row(array: np.ndarray) -> int:
    """The first row whose values are not plain integers/floats (0 when the whole column has one bad dtype)."""
    if array.dtype == object:
        for i, v in enumerate(array):
            if not isinstance(v, (int, float, np.integer, np.floating)):
                return i
    if array.dtype.kind == "f":
        flat = array.reshape(len(array), -1)
        bad = ~(np.isfinite(flat) & (flat == np.round(flat))).all(axis=1)
        if bad.any():
            return int(np.flatnonzero(bad)[0])
    return 0


def _check_range(column: FeatureColumn, ids: np.ndarray, *, row_of) -> None:
    """ids (m, k): every value in 0 .. num_embeddings - 1; row_of maps a position of `ids` to the caller's row."""
    if ids.size == 0:
        return
    upper = column.num_embeddings or np.iinfo(ids.dtype).max
    bad = ((ids < 0) | (ids >= upper)).any(axis=1)
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        value = int(ids[at][(ids[at] < 0) | (ids[at] >= upper)][0])
        raise InputError(
            f"column {column.name!r} row {row_of(at)}: id {value} is outside 0 .. {upper - 1} "
            f"({int(bad.sum())} rows in all); the model's table has {upper} rows: map unknown ids to a reserved id first."
        )


def _check_id_list(column: FeatureColumn, values: Any) -> CheckedColumn:
    rows = list(values)
    flat, lengths = _fast_id_lists(rows)
    if flat is None:
        flat, lengths = _id_lists_row_by_row(column, rows)
    flat = flat.astype(column.dtype, copy=False)
    starts = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    _check_range(column, flat[:, None], row_of=lambda k: int(np.searchsorted(starts, k, side="right") - 1))
    return CheckedColumn(column, flat, starts)


def _fast_id_lists(rows: list) -> tuple[np.ndarray | None, np.ndarray]:
    """Flat ids and lengths in a few numpy calls when every row is a flat list/array of integers; (None, _) otherwise."""
    try:
        lengths = np.fromiter((len(v) for v in rows), dtype=np.int64, count=len(rows))
        filled = [v for v, k in zip(rows, lengths) if k]
        flat = np.concatenate(filled) if filled else np.zeros(0, dtype=np.int64)
    except (TypeError, ValueError):  # a scalar or a string row, nested lists: the slow path names the row
        return None, np.zeros(0, dtype=np.int64)
    if flat.ndim != 1 or flat.size != lengths.sum() or flat.dtype.kind not in "iu" or any(isinstance(v, (str, bytes)) for v in filled):
        return None, lengths
    return flat, lengths


def _id_lists_row_by_row(column: FeatureColumn, rows: list) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.zeros(len(rows), dtype=np.int64)
    parts = []
    for row, value in enumerate(rows):
        if value is None or isinstance(value, (str, bytes, int, float, np.generic)):
            raise InputError(f"column {column.name!r} row {row}: {type(value).__name__} where a list of ids is expected (an empty list is fine).")
        arr = np.asarray(value)
        if arr.ndim != 1 and arr.size:
            raise InputError(f"column {column.name!r} row {row}: nested lists; a row holds one flat list of ids.")
        arr = arr.reshape(-1)
        if arr.size:
            arr = _cast(column, arr[:, None], rows_offset=0)[:, 0] if arr.dtype.kind in "iu" else _list_dtype_error(column, row, arr)
        parts.append(arr.astype(column.dtype, copy=False))
        lengths[row] = arr.size
    return (np.concatenate(parts) if parts else np.zeros(0, dtype=column.dtype)), lengths


def _list_dtype_error(column: FeatureColumn, row: int, arr: np.ndarray) -> np.ndarray:
    what = "floats" if arr.dtype.kind == "f" else f"{arr.dtype} values"
    raise InputError(f"column {column.name!r} row {row}: {what} in an id list; ids are integers, map them to the model's id space first.")


def _shape_text(shape: Sequence[int]) -> str:
    return "one value" if not tuple(shape) else f"{'x'.join(str(s) for s in shape)} values"


REFERENCE_PREFIX = "column:"  # reference.npz holds one array a column under this prefix
REFERENCE_PAD = -1  # id lists are kept padded to their longest row; this marks the padding


def reference_arrays(rows: CheckedRows) -> dict[str, np.ndarray]:
    """Checked rows as the self-check keeps them: one (n, ...) array a column, id lists padded with REFERENCE_PAD."""
    out = {}
    for c in rows.columns:
        if c.starts is None:
            out[REFERENCE_PREFIX + c.column.name] = c.values
            continue
        lengths = np.diff(c.starts)
        padded = np.full((rows.n, max(int(lengths.max(initial=0)), 1)), REFERENCE_PAD, dtype=np.int64)
        padded[np.arange(padded.shape[1]) < lengths[:, None]] = c.values
        out[REFERENCE_PREFIX + c.column.name] = padded
    return out


def reference_rows(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The inverse of reference_arrays: a dict of columns the embedder takes."""
    out: dict[str, Any] = {}
    for key, array in arrays.items():
        name = key[len(REFERENCE_PREFIX) :] if key.startswith(REFERENCE_PREFIX) else key
        is_list = array.dtype.kind == "i" and array.ndim == 2 and (array == REFERENCE_PAD).any()
        out[name] = [row[row != REFERENCE_PAD] for row in array] if is_list else array
    return out
