"""fp16 for a GPU: weights and matmuls in half precision; inputs, outputs, normalisation, softmax and pooling in fp32."""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from embedrt.errors import ExportError

# Ops whose reductions lose too much in fp16 (LayerNorm variance, Softmax sums), kept in fp32.
FP32_OPS = (
    "LayerNormalization",
    "SkipLayerNormalization",
    "EmbedLayerNormalization",
    "SimplifiedLayerNormalization",
    "Softmax",
    "ReduceMean",
    "ReduceSum",
    "ReduceL2",
    "Pow",
    "Sqrt",
)
FP16_MAX = float(np.finfo(np.float16).max)


def pooling_nodes(model: onnx.ModelProto, token_output: str | None) -> list[str]:
    """Names of the nodes downstream of the token embeddings: the in-graph pooling and normalisation."""
    if token_output is None:
        return []
    tainted, names = {token_output}, []
    for node in model.graph.node:  # graph nodes are topologically sorted
        if tainted.intersection(node.input):
            names.append(node.name)
            tainted.update(node.output)
    return names


def convert_fp16(src: Path, out: Path, *, token_output: str | None = None, fused: bool = False) -> tuple[str, ...]:
    """Write the fp16 graph of `src` to `out`; refuse weights that do not fit in fp16 (they would become Inf).

    `fused`: a graph of ONNX Runtime's fused ops, whose fp16 kernels keep their own reductions in fp32,
    so only the pooling stays fp32 (blocking SkipLayerNormalization makes Attention's inputs mixed types).
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    check_fp16_range(model, src)
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=[] if fused else list(FP32_OPS),
        node_block_list=pooling_nodes(model, token_output),
    )
    share_duplicate_nodes(converted, out)
    check_finite_initializers(converted, out)
    onnx.save(converted, str(out))
    try:
        onnx.checker.check_model(str(out))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{out}: the fp16 graph is not valid ONNX ({exc}); export this model as fp32 and report it.") from exc
    return ("fp16",)


def share_duplicate_nodes(model: onnx.ModelProto, where: Path) -> int:
    """Drop nodes identical to an earlier one, then make the remaining node names unique; returns how many were dropped.

    onnxruntime 1.31's float16 converter adds one Cast per consumer, all with the same name and output, which
    ONNX Runtime refuses ("two nodes with same node name"); 1.32's shares one. Sharing them here works with both.
    """
    graph, seen, kept = model.graph, set(), []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            kept.append(node)
    dropped = len(graph.node) - len(kept)
    producers = Counter(name for node in kept for name in node.output if name)
    twice = sorted(name for name, count in producers.items() if count > 1)
    if twice:
        raise ExportError(f"{where}: the fp16 conversion made different nodes writing the same tensor {twice[:3]}; export this model as fp32.")
    names, used = Counter(node.name for node in kept if node.name), Counter()
    for node in kept:
        if node.name and names[node.name] > 1:
            used[node.name] += 1
            node.name = f"{node.name}_{used[node.name]}"
    del graph.node[:]
    graph.node.extend(sort_topologically(kept))
    return dropped


def sort_topologically(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """`nodes` with each after the producers of its inputs (the converter appends its Casts at the end of the graph).

    Stable: among the nodes that can go next, the earliest in the given order goes first, so a sorted graph keeps its order.
    """
    producer = {out: i for i, node in enumerate(nodes) for out in node.output if out}
    consumers: list[list[int]] = [[] for _ in nodes]
    pending = [0] * len(nodes)
    for i, node in enumerate(nodes):
        for j in {producer[name] for name in node.input if name in producer}:
            consumers[j].append(i)
            pending[i] += 1
    ready = [i for i, count in enumerate(pending) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for k in consumers[i]:
            pending[k] -= 1
            if pending[k] == 0:
                heapq.heappush(ready, k)
    left = [i for i in range(len(nodes)) if pending[i] > 0]  # a cycle: left in place for onnx.checker to name
    return [nodes[i] for i in order + left]


def check_fp16_range(model: onnx.ModelProto, where: Path) -> None:
    """fp16 tops out at 65504: a larger weight would silently become Inf."""
    for init in model.graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(init)
        peak = float(np.abs(values).max()) if values.size else 0.0
        if not np.isfinite(peak) or peak > FP16_MAX:
            raise ExportError(
                f"{where}: weight {init.name!r} holds {peak:g}, beyond fp16's range (±{FP16_MAX:g}); "
                "this model cannot run in fp16: export it as fp32."
            )


def check_finite_initializers(model: onnx.ModelProto, where: Path) -> None:
    for init in model.graph.initializer:
        if init.data_type in (onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT):
            values = numpy_helper.to_array(init)
            if values.size and not np.isfinite(values.astype(np.float32)).all():
                raise ExportError(f"{where}: the fp16 conversion made NaN or Inf in weight {init.name!r}; export this model as fp32.")
