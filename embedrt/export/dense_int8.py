"""Dynamic int8 for a feature model's dense layers: nn.Linear's Gemm as MatMul + Add (what ONNX Runtime quantises
dynamically), per-channel weights; embedding tables (Gather) only when asked, and then the gate decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedrt.export.staging import work_dir


def quantize_dense_int8(src: Path, out: Path, *, tables: bool = False, reduce_range: bool = False) -> tuple[str, ...]:
    """Dynamic int8 for the dense layers (Gemm rewritten as MatMul + Add, which ONNX Runtime quantises dynamically);
    embedding tables (Gather) too if `tables`. Per-channel weights; 7-bit with `reduce_range` (EnginePlan decides)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from embedrt.export.quantize import WEIGHTS_7BIT, _quiet_quantizers

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
