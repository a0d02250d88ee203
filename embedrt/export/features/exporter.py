"""Any torch.nn.Module over named feature tensors (a user or item tower) -> `features` export dir, proven against PyTorch.

The module's `forward` takes one tensor per graph input, by name (ids (batch,), fixed id or float
vectors (batch, k), id lists as NAME + NAME_offsets or padded (batch, longest)) and returns one
(batch, dim) tensor, or a dict holding it under `output`. Parity rows are drawn from the column
specs (ids over their whole range, id lists of varied lengths with an empty one, floats from the
example's statistics) and run through PyTorch and ONNX Runtime at several batch sizes.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from embedrt.errors import ExportError, ParityError
from embedrt.export.dense_int8 import quantize_dense_int8
from embedrt.export.features.embedding_bag import with_cumsum_bags
from embedrt.export.features.columns import (
    check_graph_names,
    declare_columns,
    example_as_rows,
    forward_names,
    infer_columns,
    with_table_ranges,
)
from embedrt.export.graph_pooling import l2_normalize
from embedrt.export.parity import compare, gate, parity_report
from embedrt.export.precision import EnginePlan
from embedrt.export.staging import model_file_record, staged_dir, work_dir
from embedrt.manifest import MODEL_NAME, FeatureColumn, FeaturesSection, Manifest, TensorSpec, file_sha256, write_manifest
from embedrt.runtime.engines.cpu import cpu_record
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.runtime.engines.reference import REFERENCE_NAME, write_reference
from embedrt.runtime.features.rows import CheckedRows, check_rows, graph_inputs, reference_arrays
from embedrt.versions import package_versions

log = logging.getLogger("embedrt")

DEFAULT_OPSET = 17
FEATURES_OUTPUT = "embedding"
PARITY_ROWS = 256
PARITY_BATCHES = (1, 7, 64, 184)  # rows per engine call: batch 1 and odd sizes catch a shape baked in by the tracer
MAX_BATCH_SIZE = 4096
PRECISIONS = ("fp32", "int8")
REFERENCE_ROWS = 8  # parity rows kept in the export dir for the self-check on load (the first two hold the id edges)


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
            if self.output not in out:
                raise ExportError(f"forward returned a dict with keys {sorted(out)}; pass output=KEY (--output KEY) naming the embedding.")
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
    cols = declare_columns(declared, names) if declared is not None else infer_columns(example, names)
    example_rows = example_as_rows(example, cols) if example else None
    cols = with_table_ranges(module, cols, names, example_rows)
    check_graph_names(cols, names)
    rows = parity_rows(cols, example_rows, seed=seed)
    graph = FeatureEncoderGraph(module, [s.name for s in graph_inputs(cols)], output, normalize).eval()
    reference = torch_vectors(graph, rows)
    if reference.ndim != 2:
        raise ExportError(f"the module returned shape {tuple(reference.shape)} for {rows.n} rows; an embedding output is (batch, dim).")
    what = source.get("factory", type(module).__name__) if source else type(module).__name__
    bad = np.flatnonzero(~np.isfinite(reference).all(axis=1))
    if bad.size:  # the source itself, not the export: no precision helps
        raise ExportError(
            f"{what}: the module's forward gives NaN or Inf for {bad.size} of {rows.n} parity rows (first: row {int(bad[0])}: "
            f"{_describe_row(rows, int(bad[0]))}); an export would embed such rows as NaN. Fix the module or its weights for every "
            "input its specs allow (ids over their whole range, empty id lists, the example's floats), and run the export again."
        )
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
            # One decision of the weight width for every modality: EnginePlan asks this CPU's int8 kernel.
            optimizations += quantize_dense_int8(fp32_path, model_path, tables=quantize_tables, reduce_range=EnginePlan("int8").reduce_range)
        else:
            fp32_path.replace(model_path)
        report = measure_features_parity(reference, model_path, rows, precision=precision)
        gate(report, what)
        head = slice(0, REFERENCE_ROWS)
        write_reference(tmp, reference_arrays(rows.take(head)), reference[head])
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


# -- parity rows ------------------------------------------------------------------------------------
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
            _, feed = next(rows.take(span).feeds(span.stop - span.start))
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
        sub = rows.take(span)
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
    one = rows.take(slice(row, row + 1))
    return ", ".join(f"{c.column.name}={c.values.tolist() if c.starts is not None else c.values[0].tolist()}" for c in one.columns)


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
