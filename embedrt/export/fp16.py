"""fp16 for a GPU: weights and matmuls in half precision; inputs, outputs, normalisation, softmax and pooling in fp32."""

from __future__ import annotations

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


def convert_fp16(src: Path, out: Path, *, token_output: str | None = None) -> tuple[str, ...]:
    """Write the fp16 graph of `src` to `out`; refuse weights that do not fit in fp16 (they would become Inf)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    check_fp16_range(model, src)
    converted = convert_float_to_float16(
        model,
        keep_io_types=True,
        op_block_list=list(FP32_OPS),
        node_block_list=pooling_nodes(model, token_output),
    )
    check_finite_initializers(converted, out)
    onnx.save(converted, str(out))
    return ("fp16",)


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
