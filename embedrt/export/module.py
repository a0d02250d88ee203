"""Any torch.nn.Module over named feature tensors (a user or item tower) -> `features` export dir, proven against PyTorch.

The module's `forward` takes one tensor per graph input, by name (ids (batch,), fixed id or float
vectors (batch, k), id lists as NAME + NAME_offsets or padded (batch, longest)) and returns one
(batch, dim) tensor, or a dict holding it under `output`. Parity rows are drawn from the column
specs (ids over their whole range, id lists of varied lengths with an empty one, floats from the
example's statistics) and run through PyTorch and ONNX Runtime at several batch sizes.
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from embedrt.errors import ExportError, ParityError
from embedrt.export.graph_pooling import l2_normalize
from embedrt.export.parity import compare, gate, parity_report
from embedrt.export import staging
from embedrt.export.embedding_bag import with_cumsum_bags
from embedrt.export.staging import model_file_record, staged_dir, work_dir
from embedrt.manifest import MODEL_NAME, FeatureColumn, FeaturesSection, Manifest, TensorSpec, file_sha256, write_manifest
from embedrt.runtime.cpu import cpu_record
from embedrt.runtime.feature_rows import (
    ID_KINDS,
    KINDS,
    LAYOUTS,
    CheckedColumn,
    CheckedRows,
    check_rows,
    graph_inputs,
    offsets_name,
    reference_arrays,
)
from embedrt.runtime.onnx_backend import OnnxBackend
from embedrt.runtime.reference import REFERENCE_NAME, write_reference
from embedrt.versions import package_versions

log = logging.getLogger("embedrt")

DEFAULT_OPSET = 17
FEATURES_OUTPUT = "embedding"
PARITY_ROWS = 256
PARITY_BATCHES = (1, 7, 64, 184)  # rows per engine call: batch 1 and odd sizes catch a shape baked in by the tracer
MAX_BATCH_SIZE = 4096
PRECISIONS = ("fp32", "int8")
REFERENCE_ROWS = 8  # parity rows kept in the export dir for the self-check on load (the first two hold the id edges)

staging.KINDS.setdefault("features", "features export")  # until embedrt.export.staging lists this modality itself


class FeatureEncoderGraph(torch.nn.Module):
    """The exported graph: the module called by keyword, its embedding picked from a dict output, optionally L2-normalised."""

    def __init__(self, module: torch.nn.Module, input_names: Sequence[str], output: str | None, normalize: bool):
        super().__init__()
        self.module = module
        self.input_names = tuple(input_names)
        self.output = output
        self.normalize = normalize

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        out = self.module(**dict(zip(self.input_names, tensors)))
        if isinstance(out, Mapping):
            out = out[self.output]
        return l2_normalize(out) if self.normalize else out


def export_module(
    module: torch.nn.Module,
    out: str | os.PathLike,
    example_inputs: Mapping[str, Any] | None = None,
    *,
    columns: Sequence[FeatureColumn | Mapping[str, Any]] | None = None,
    output: str | None = None,
    normalize: bool = False,
    precision: str = "fp32",
    quantize_tables: bool = False,
    source: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Export `module` to `out` as a `features` export dir; the gate decides, a failed gate writes nothing.

    `example_inputs`: a few rows, as a dict of columns (lists, numpy arrays or tensors; id lists as lists
    per row, or NAME + NAME_offsets tensors as nn.EmbeddingBag takes them). They give the float
    features' statistics, and the columns when `columns` is not given (or `module.embedrt_inputs`).
    `columns`: FeatureColumn specs (or dicts of their fields); an id column's num_embeddings is read from
    the nn.Embedding / nn.EmbeddingBag it feeds when not declared.
    `precision` "int8": dynamic int8 for the dense layers (MatMul, Gemm); `quantize_tables` also the
    embedding tables (Gather). `source` is recorded in the manifest (factory, weights fingerprint).
    """
    if precision not in PRECISIONS:
        raise ExportError(f"--precision {precision!r}: feature models export as {' or '.join(PRECISIONS)}.")
    module = module.eval()
    names = forward_names(module)
    declared = columns if columns is not None else getattr(module, "embedrt_inputs", None)
    example = dict(example_inputs if example_inputs is not None else getattr(module, "embedrt_example", None) or {})
    cols = declare_columns(declared, example, names) if declared is not None else infer_columns(example, names)
    example_rows = example_as_rows(example, cols) if example else None
    cols = with_table_ranges(module, cols, names, example_rows)
    _check_graph_names(cols, names)
    rows = parity_rows(cols, example_rows, seed=seed)
    graph = FeatureEncoderGraph(module, [s.name for s in graph_inputs(cols)], output, normalize).eval()
    reference = torch_vectors(graph, rows)
    if reference.ndim != 2:
        raise ExportError(f"the module returned shape {tuple(reference.shape)} for {rows.n} rows; an embedding output is (batch, dim).")
    dim = int(reference.shape[1])
    out = Path(out)
    weights = [source["weights"]] if source and source.get("weights") else []
    fast_module, bags = with_cumsum_bags(module)
    fast_graph = FeatureEncoderGraph(fast_module, graph.input_names, output, normalize).eval()
    with staged_dir(out, kind="features", overwrite=overwrite, sources=weights) as tmp, work_dir("fp32") as work:
        model_path = tmp / MODEL_NAME
        fp32_path = Path(work) / MODEL_NAME
        export_features_onnx(fast_graph, cols, fp32_path, rows, opset)  # the gate below holds it to the original module
        optimizations: tuple[str, ...] = ("embedding_bag:cumsum",) if bags else ()
        if precision == "int8":
            optimizations += quantize_dense_int8(fp32_path, model_path, tables=quantize_tables)
        else:
            fp32_path.replace(model_path)
        report = measure_features_parity(reference, model_path, rows, precision=precision)
        gate(report, source.get("factory", type(module).__name__) if source else type(module).__name__)
        head = slice(0, REFERENCE_ROWS)
        write_reference(tmp, reference_arrays(_slice_rows(rows, head)), reference[head])
        manifest = Manifest(
            modality="features",
            dim=dim,
            inputs=graph_inputs(cols),
            outputs=(TensorSpec(FEATURES_OUTPUT, "float32", ("batch", dim)),),
            pooling="none",
            normalize=normalize,
            pooled_in_graph=True,
            precision=precision,
            opset=opset,
            provider="cpu" if precision == "int8" else "any",
            optimizations=optimizations,
            features=FeaturesSection(columns=tuple(cols), output=FEATURES_OUTPUT),
            source={"module": f"{type(module).__module__}.{type(module).__qualname__}", **dict(source or {})},
            versions=package_versions(),
            parity=report,
            model_file=model_file_record(model_path),
            files={REFERENCE_NAME: file_sha256(tmp / REFERENCE_NAME)},
            machine=cpu_record(),
            max_batch_size=MAX_BATCH_SIZE,
        )
        write_manifest(tmp, manifest)  # last: a dir without it is never taken for an export
    log.info("embedrt: exported %s to %s (min cosine %.7f)", type(module).__name__, out, report["min_cosine"])
    return out


# -- the columns ------------------------------------------------------------------------------------
def forward_names(module: torch.nn.Module) -> tuple[str, ...]:
    params = inspect.signature(module.forward).parameters.values()
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        raise ExportError(f"{type(module).__name__}.forward takes *args/**kwargs; name each input tensor as a parameter.")
    return tuple(p.name for p in params)


def declare_columns(declared: Sequence[Any], example: Mapping[str, Any], names: Sequence[str]) -> list[FeatureColumn]:
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
        if f"{name}_offsets" in example or array is None:
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


def _check_graph_names(cols: Sequence[FeatureColumn], names: Sequence[str]) -> None:
    wanted = [s.name for s in graph_inputs(cols)]
    if sorted(wanted) != sorted(names):
        raise ExportError(f"forward takes ({', '.join(names)}) but the columns feed ({', '.join(wanted)}); make them match.")


# -- parity rows ------------------------------------------------------------------------------------
def zero_rows(cols: Sequence[FeatureColumn], n: int = 2) -> CheckedRows:
    data = {c.name: [[0, 0]] * n if c.kind == "id_list" else np.zeros((n, *c.shape), dtype=c.dtype) for c in cols}
    return check_rows(cols, data)


def parity_rows(cols: Sequence[FeatureColumn], example: CheckedRows | None, *, n: int = PARITY_ROWS, seed: int = 0) -> CheckedRows:
    """Rows drawn from the specs: ids over 0 .. num_embeddings - 1 (both ends included), id lists of 0 .. 2x the example's
    longest (at least 8) ids, floats from the example's per-feature mean and standard deviation (0, 1 without one)."""
    rng = np.random.default_rng(seed)
    stats = {c.column.name: c for c in example.columns} if example is not None else {}
    data: dict[str, Any] = {}
    for c in cols:
        if c.kind == "float":
            values = stats[c.name].values.astype(np.float64) if c.name in stats else np.zeros((0, *c.shape))
            mean = values.mean(axis=0) if len(values) else 0.0
            std = values.std(axis=0) if len(values) > 1 else 1.0
            std = np.where(np.asarray(std) > 0, std, 1.0)
            data[c.name] = (mean + std * rng.standard_normal((n, *c.shape))).astype(c.dtype)
        elif c.kind == "id":
            ids = rng.integers(0, c.num_embeddings, size=(n, *c.shape))
            ids.reshape(n, -1)[0], ids.reshape(n, -1)[1] = 0, c.num_embeddings - 1
            data[c.name] = ids.astype(c.dtype)
        else:
            longest = int(np.diff(stats[c.name].starts).max()) if c.name in stats and stats[c.name].starts.size > 1 else 4
            lengths = rng.integers(0, max(8, 2 * longest) + 1, size=n)
            lengths[0], lengths[1] = 0, 1
            data[c.name] = [rng.integers(0, c.num_embeddings, size=k) for k in lengths]
            data[c.name][1] = np.array([c.num_embeddings - 1])
    return check_rows(cols, data)


def torch_vectors(graph: FeatureEncoderGraph, rows: CheckedRows) -> np.ndarray:
    """PyTorch's vectors, fed in the same batches as the ONNX graph is (a module that depends on its batch shows it)."""
    out = []
    with torch.no_grad():
        for span in _batch_sizes(rows.n):
            _, feed = next(_slice_rows(rows, span).feeds(span.stop - span.start))
            out.append(graph(*[torch.from_numpy(np.ascontiguousarray(feed[name])) for name in graph.input_names]).float().numpy())
    return np.concatenate(out)


def _batch_sizes(n: int) -> list[slice]:
    spans, start, i = [], 0, 0
    while start < n:
        size = PARITY_BATCHES[i % len(PARITY_BATCHES)]
        spans.append(slice(start, min(start + size, n)))
        start += size
        i += 1
    return spans


def measure_features_parity(reference: np.ndarray, onnx_path: Path, rows: CheckedRows, *, precision: str = "fp32") -> dict:
    """PyTorch fp32 vectors vs the ONNX graph's on the parity rows, fed at batch sizes 1, 7, 64 and 184."""
    backend = OnnxBackend(onnx_path)
    got = np.zeros_like(reference)
    for span in _batch_sizes(rows.n):
        sub = _slice_rows(rows, span)
        for _, feed in sub.feeds(sub.n):
            try:
                got[span] = backend.run(feed, [FEATURES_OUTPUT])[FEATURES_OUTPUT]
            except Exception as exc:  # onnxruntime's own error types: the graph cannot run rows PyTorch can
                raise ParityError(
                    f"the ONNX graph fails on parity rows {span.start}..{span.stop - 1} (first: {_describe_row(rows, span.start)}) "
                    f"where PyTorch runs them ({str(exc).splitlines()[0]}); no export dir was written."
                ) from exc
    bad = np.flatnonzero(~np.isfinite(got).all(axis=1) & np.isfinite(reference).all(axis=1))
    if bad.size:
        raise ParityError(
            f"the ONNX graph gives NaN or Inf for {bad.size} parity rows where PyTorch's vectors are finite (first: row {int(bad[0])}: "
            f"{_describe_row(rows, int(bad[0]))}); no export dir was written. An op exports differently for such rows "
            "(torch's max-mode EmbeddingBag on an empty list, say)."
        )
    measured = compare(reference, got)
    measured["inputs"] = f"{rows.n} rows drawn from the column specs (ids over their range, id lists 0..n long, floats from the example)"
    return parity_report(precision, measured)


def _describe_row(rows: CheckedRows, row: int) -> str:
    one = _slice_rows(rows, slice(row, row + 1))
    return ", ".join(f"{c.column.name}={c.values.tolist() if c.starts is not None else c.values[0].tolist()}" for c in one.columns)


def _slice_rows(rows: CheckedRows, span: slice) -> CheckedRows:
    return CheckedRows(tuple(_slice_column(c, span) for c in rows.columns), span.stop - span.start)


def _slice_column(c: CheckedColumn, span: slice) -> CheckedColumn:
    if c.starts is None:
        return CheckedColumn(c.column, c.values[span])
    starts = c.starts[span.start : span.stop + 1]
    return CheckedColumn(c.column, c.values[starts[0] : starts[-1]], starts - starts[0])


# -- the graph --------------------------------------------------------------------------------------
def export_features_onnx(graph: FeatureEncoderGraph, cols: Sequence[FeatureColumn], path: Path, rows: CheckedRows, opset: int) -> None:
    """The fp32 graph, traced on 8 parity rows: every input's batch (or values) axis dynamic, padded lists' length too."""
    specs = graph_inputs(cols)
    _, feed = next(rows.feeds(8))
    args = tuple(torch.from_numpy(np.ascontiguousarray(feed[s.name])) for s in specs)
    axes = {s.name: {i: str(a) for i, a in enumerate(s.shape) if isinstance(a, str)} for s in specs}
    axes[FEATURES_OUTPUT] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings; dynamo=False is deliberate
        torch.onnx.export(
            graph, args, str(path), input_names=[s.name for s in specs], output_names=[FEATURES_OUTPUT],
            dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False,
        )


def quantize_dense_int8(src: Path, out: Path, *, tables: bool = False) -> tuple[str, ...]:
    """Dynamic int8 for the dense layers (Gemm rewritten as MatMul + Add, which ONNX Runtime quantises dynamically);
    embedding tables (Gather) too if `tables`. Per-channel weights; 7-bit where this CPU's u8 x s8 kernel saturates."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from embedrt.export.quantize import WEIGHTS_7BIT, _quiet_quantizers
    from embedrt.runtime.cpu import u8s8_exact

    reduce_range = not u8s8_exact()
    with work_dir("int8") as work:
        matmuls = Path(work) / "matmul.onnx"
        onnx.save(gemm_as_matmul(onnx.load(str(src))), str(matmuls))
        with _quiet_quantizers():
            quantize_dynamic(
                str(matmuls), str(out), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
                op_types_to_quantize=["MatMul"] + (["Gather"] if tables else []),
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    return ("int8:dynamic_dense",) + (("int8:tables",) if tables else ()) + ((WEIGHTS_7BIT,) if reduce_range else ())


def gemm_as_matmul(model):
    """Gemm(A, B, C) with constant B -> MatMul(A, B') + C: nn.Linear as ONNX Runtime's dynamic quantiser takes it."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    nodes = []
    for node in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and attrs.get("beta", 1.0) == 1.0 and not attrs.get("transA", 0)
        if node.op_type != "Gemm" or node.input[1] not in inits or not plain:
            nodes.append(node)
            continue
        weight = numpy_helper.to_array(inits[node.input[1]])
        if attrs.get("transB", 0):
            weight = weight.T
        w_name = f"{node.input[1]}_matmul"
        model.graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight), w_name))
        product = node.output[0] + ("_matmul" if len(node.input) > 2 else "")
        nodes.append(helper.make_node("MatMul", [node.input[0], w_name], [product], name=f"{node.name}_MatMul"))
        if len(node.input) > 2:
            nodes.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    used = _used_names(model.graph)
    keep = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(keep)
    return model


def _used_names(graph) -> set[str]:
    """Every tensor name a node reads, inside Loop/If bodies too (nn.EmbeddingBag's Loop reads its table from outside)."""
    used = set()
    for node in graph.node:
        used.update(node.input)
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                used |= _used_names(attr.g)
            for sub in attr.graphs:
                used |= _used_names(sub)
    return used
