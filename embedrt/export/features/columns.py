"""The input columns of a feature model's export: declared (columns=, inputs JSON, `embedrt_inputs`) or read off example
rows, checked against `forward`'s parameters, and each id column's valid range read from the table it feeds."""

from __future__ import annotations

import inspect
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from embedrt.errors import ExportError
from embedrt.manifest import FeatureColumn
from embedrt.runtime.features.rows import ID_KINDS, KINDS, LAYOUTS, CheckedRows, check_rows, graph_inputs, offsets_name


def forward_names(module: torch.nn.Module) -> tuple[str, ...]:
    params = inspect.signature(module.forward).parameters.values()
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise ExportError(f"{type(module).__name__}.forward takes *args/**kwargs; name each input tensor as a parameter.")
    return tuple(p.name for p in params)


def declare_columns(declared: Sequence[Any], names: Sequence[str]) -> list[FeatureColumn]:
    """FeatureColumn specs from declarations (dataclasses or dicts, as inputs.json holds them), defaults filled in."""
    cols = []
    for i, d in enumerate(declared):
        fields = dict(d.__dict__) if isinstance(d, FeatureColumn) else dict(d)
        name = fields.get("name")
        kind = fields.get("kind")
        if not name or kind not in KINDS:
            raise ExportError(f"inputs[{i}] ({name!r}): needs a name and a kind, one of {', '.join(KINDS)}.")
        fields.setdefault("dtype", "float32" if kind == "float" else "int64")
        fields["shape"] = tuple(fields.get("shape", ()))
        if kind == "id_list" and not fields.get("layout"):
            fields["layout"] = "offsets" if offsets_name(FeatureColumn(name, kind, "int64")) in names else "padded"
        try:
            cols.append(FeatureColumn(**fields))
        except TypeError as exc:
            raise ExportError(f"inputs[{i}] ({name!r}): {exc}; the fields are those of embedrt.manifest.FeatureColumn.") from exc
        c = cols[-1]
        if c.kind == "id_list" and c.layout not in LAYOUTS:
            raise ExportError(f"inputs[{i}] ({name!r}): layout {c.layout!r} is not one of {', '.join(LAYOUTS)}.")
        if np.dtype(c.dtype).kind != ("f" if c.kind == "float" else "i"):
            raise ExportError(f"inputs[{i}] ({name!r}): dtype {c.dtype} does not fit kind {c.kind!r}.")
    return cols


def infer_columns(example: Mapping[str, Any], names: Sequence[str]) -> list[FeatureColumn]:
    """Columns read off example tensors: int -> id, float -> float, NAME + NAME_offsets -> id list (offsets)."""
    if not example:
        raise ExportError("no input specs: pass example_inputs, columns, or give the module an `embedrt_inputs` list (or --inputs JSON).")
    cols = []
    for name in names:
        if name.endswith("_offsets") and name[: -len("_offsets")] in example:
            continue
        if name not in example:
            raise ExportError(f"forward takes {name!r} but the example inputs have no such column; give one (or declare the columns).")
        value = example[name]
        array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value) if _regular(value) else None
        if f"{name}_offsets" in example or f"{name}_offsets" in names or array is None:
            layout = "offsets" if f"{name}_offsets" in names else "padded"
            dtype = str(array.dtype) if array is not None and array.dtype.kind == "i" else "int64"
            cols.append(FeatureColumn(name, "id_list", dtype, (), layout=layout))
        elif array.dtype.kind in "iu":
            cols.append(FeatureColumn(name, "id", "int64" if array.dtype.kind == "u" else str(array.dtype), tuple(array.shape[1:])))
        elif array.dtype.kind == "f":
            cols.append(FeatureColumn(name, "float", "float32", tuple(array.shape[1:])))
        else:
            raise ExportError(f"example column {name!r} has dtype {array.dtype}; a feature is integer ids or floats.")
    return cols


def _regular(value: Any) -> bool:
    try:
        return np.asarray(value).dtype != object
    except ValueError:
        return False


def example_as_rows(example: Mapping[str, Any], cols: Sequence[FeatureColumn]) -> CheckedRows:
    """The example in the runtime's row format, checked like any rows (NAME + NAME_offsets tensors become lists)."""
    data: dict[str, Any] = {}
    for c in cols:
        value = example.get(c.name)
        if value is None:
            raise ExportError(f"the example inputs have no column {c.name!r}; give every column, or no example at all.")
        value = value.numpy() if isinstance(value, torch.Tensor) else value
        if c.kind == "id_list" and offsets_name(c) in example:
            offsets = np.asarray(example[offsets_name(c)]).tolist() + [len(value)]
            value = [np.asarray(value[a:b]) for a, b in zip(offsets[:-1], offsets[1:])]
        data[c.name] = value
    try:
        return check_rows(cols, data)
    except Exception as exc:
        raise ExportError(f"example inputs: {exc}") from exc


def with_table_ranges(module: torch.nn.Module, cols: list[FeatureColumn], names: Sequence[str], example: CheckedRows | None) -> list[FeatureColumn]:
    """num_embeddings of each id column, from the nn.Embedding / nn.EmbeddingBag its tensor reaches unchanged."""
    probe = example if example is not None else zero_rows(cols)
    feed = {k: torch.from_numpy(np.ascontiguousarray(v)) for _, f in probe.feeds(probe.n) for k, v in f.items()}
    seen: dict[int, int] = {}

    def hook(table: torch.nn.Module, args: tuple) -> None:
        if args and isinstance(args[0], torch.Tensor):
            seen.setdefault(args[0].data_ptr(), table.num_embeddings)

    tables = [m for m in module.modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))]
    handles = [t.register_forward_pre_hook(hook) for t in tables]
    try:
        with torch.no_grad():
            module(**{k: v for k, v in feed.items() if k in names})
    except Exception as exc:
        raise ExportError(f"{type(module).__name__} failed on the example rows ({type(exc).__name__}: {exc}).") from exc
    finally:
        for h in handles:
            h.remove()
    out = []
    for c in cols:
        if c.kind in ID_KINDS:
            found = seen.get(feed[c.name].data_ptr()) if feed[c.name].numel() else None
            if found is None and c.num_embeddings < 1:
                raise ExportError(
                    f"input {c.name!r}: no nn.Embedding/nn.EmbeddingBag takes it as it is, so its valid range is unknown; "
                    "declare its num_embeddings (inputs JSON or columns=)."
                )
            if found is not None and c.num_embeddings > found:
                raise ExportError(f"input {c.name!r}: declared num_embeddings {c.num_embeddings} but its table has {found} rows.")
            c = FeatureColumn(**{**c.__dict__, "num_embeddings": c.num_embeddings or int(found)})
        out.append(c)
    return out


def check_graph_names(cols: Sequence[FeatureColumn], names: Sequence[str]) -> None:
    wanted = [s.name for s in graph_inputs(cols)]
    if sorted(wanted) != sorted(names):
        raise ExportError(f"forward takes ({', '.join(names)}) but the columns feed ({', '.join(wanted)}); make them match.")


def zero_rows(cols: Sequence[FeatureColumn], n: int = 2) -> CheckedRows:
    data = {c.name: [[0, 0]] * n if c.kind == "id_list" else np.zeros((n, *c.shape), dtype=c.dtype) for c in cols}
    return check_rows(cols, data)
