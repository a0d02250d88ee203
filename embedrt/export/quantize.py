"""int8 for the CPU: SmoothQuant-scaled dynamic int8 for text encoders, static QDQ with calibration for CNNs.

The text recipe, measured on all-MiniLM-L6-v2 against PyTorch fp32 (benchmarks/int8_exploration.py):
- dynamic per-channel int8 everywhere: fast, but one activation scale per batch loses to BERT's
  outlier channels (min cosine 0.96, and no single layer kept in fp32 lifts it past 0.975);
- SmoothQuant (alpha 0.7): each matmul's input channels divided by s, its weight rows multiplied by s,
  moves the outliers into the weights, which are quantised per channel;
- the FFN output matmuls (fed by GELU, the widest range) as MatMulNBits: 8-bit weights per block of 128,
  activations quantised per row block: min cosine 0.9926, mean 0.9985.
- issue 17 (Intel Xeon with AMX): MatMulNBits does not run on AMX tiles, DynamicQuantizeMatMul does, and the
  six blockwise FFN outputs took 36% of the int8 engine's time. Only the first layer's FFN output needs its
  blocks (each layer's alone kept in fp32, the rest smoothed + dynamic: layer 0 lifts min cosine from 0.986 to
  0.991, layers 1-5 to 0.986-0.987), so with 8-bit weights only that one stays blockwise, in blocks of 256:
  min cosine 0.993, 1.3x the throughput of the six-blockwise recipe (benchmarks/int8_exploration.py).

On a CPU whose u8 x s8 kernel saturates (x86 without VNNI, embedrt.runtime.engines.cpu.u8s8_exact), the dynamic
and static recipes quantise weights to 7 bits (reduce_range), as ONNX Runtime's docs advise: on a Zen 3
the 8-bit text recipe reached min cosine 0.920, the 7-bit one 0.9924 (mean 0.9975). 7-bit engines keep all
FFN outputs blockwise, the layout measured there; in blocks of 256 since issue 17, the bundled model's 7-bit
gate gave min 0.9928, mean 0.9975 (measured on the Xeon: 7-bit weights run exactly on either kernel).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import onnx
from onnx import helper, numpy_helper

from embedrt.errors import ExportError
from embedrt.export.staging import work_dir

log = logging.getLogger("embedrt")

# Values per weight scale, and per activation scale at accuracy level 4. On MiniLM's FFN outputs, 128 ran 12%
# faster than 32 (min cosine 0.9926 instead of 0.9937), 256 another 9% (0.9948; benchmarks/int8_exploration.py).
BLOCK_SIZE = 256
BLOCKWISE_FFN_OUTPUTS = 1  # with 8-bit weights, the first layers' FFN outputs that stay blockwise (see above)
ACCURACY_INT8 = 4  # MatMulNBits accuracy_level: activations quantised to int8, int8 dot products
SMOOTH_ALPHA = 0.7  # SmoothQuant migration strength: 0 leaves activations alone, 1 moves all their range into weights
_GELU_OPS = ("Gelu", "BiasGelu", "FastGelu")


WEIGHTS_7BIT = "int8:weights_7bit"  # the step a manifest records when reduce_range was used


def quantize_text_int8(
    src: Path, out: Path, calibration: Iterable[dict[str, np.ndarray]], *, alpha: float = SMOOTH_ALPHA, reduce_range: bool = False
) -> tuple[str, ...]:
    """The text int8 recipe above: smooth, dynamic per-channel int8, the first FFN output(s) as blockwise int8.

    `reduce_range`: 7-bit weights for CPUs whose u8 x s8 kernel saturates (all FFN outputs blockwise there).
    """

    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    ffn_out = gelu_fed_matmuls(model)
    if not reduce_range:
        ffn_out = ffn_out[:BLOCKWISE_FFN_OUTPUTS]
    with work_dir("int8") as work:
        smoothed, dynamic = Path(work) / "smoothed.onnx", Path(work) / "dynamic.onnx"
        # The FFN outputs quantise their activations per block anyway: no smoothing pass over their wide input.
        onnx.save(smooth_activations(model, calibration, alpha, skip=ffn_out), str(smoothed))
        with _quiet_quantizers():
            quantize_dynamic(
                str(smoothed), str(dynamic), weight_type=QuantType.QInt8, per_channel=True, reduce_range=reduce_range,
                nodes_to_exclude=ffn_out, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        steps = ("int8:smoothquant", "int8:dynamic_per_channel") + ((WEIGHTS_7BIT,) if reduce_range else ())
        if ffn_out:
            steps += quantize_blockwise_int8(dynamic, out)
        else:
            onnx.save(onnx.load(str(dynamic)), str(out))
    return steps


def gelu_fed_matmuls(model: onnx.ModelProto) -> list[str]:
    """The FFN output projections, first layer first: MatMuls whose input comes straight from a GELU."""
    gelu_outputs = {o for n in model.graph.node if n.op_type in _GELU_OPS for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[0] in gelu_outputs]


def smooth_activations(
    model: onnx.ModelProto, calibration: Iterable[dict[str, np.ndarray]], alpha: float, *, skip: Iterable[str] = ()
) -> onnx.ModelProto:
    """SmoothQuant: before each matmul with a constant weight (MatMul, fused Attention), x/s in fp32 and W*s.

    s_j = max|x_j|^alpha / max|W_j|^(1-alpha) per input channel j, with max|x_j| from the calibration inputs.
    The product is unchanged in exact arithmetic; the int8 activation range narrows.
    """
    import onnxruntime as ort

    inits = {i.name: i for i in model.graph.initializer}
    skip = set(skip)
    targets = [
        n for n in model.graph.node
        if n.op_type in ("MatMul", "Attention") and len(n.input) > 1 and n.input[1] in inits and n.name not in skip
    ]
    acts = sorted({n.input[0] for n in targets})
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    listed = {o.name for o in probe.graph.output}
    probe.graph.output.extend(helper.make_tensor_value_info(a, onnx.TensorProto.FLOAT, None) for a in acts if a not in listed)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    peak: dict[str, np.ndarray] = {}
    for feed in calibration:
        live = feed["attention_mask"].astype(bool) if "attention_mask" in feed else None
        for name, value in zip(acts, session.run(acts, feed)):
            value = np.abs(value[live] if (live is not None and value.ndim == 3) else value)
            value = value.reshape(-1, value.shape[-1]).max(axis=0)
            peak[name] = np.maximum(peak[name], value) if name in peak else value
    if not peak:
        raise ExportError("int8 calibration got no input batches.")
    nodes = []
    for node in model.graph.node:
        if node in targets:
            weight = numpy_helper.to_array(inits[node.input[1]])
            scale = np.maximum(peak[node.input[0]], 1e-5) ** alpha / np.maximum(np.abs(weight).max(axis=1), 1e-5) ** (1 - alpha)
            scale = np.clip(scale, 1e-4, 1e4).astype(np.float32)
            inits[node.input[1]].CopyFrom(numpy_helper.from_array((weight * scale[:, None]).astype(np.float32), node.input[1]))
            model.graph.initializer.append(numpy_helper.from_array((1.0 / scale).astype(np.float32), f"{node.name}_smooth_scale"))
            nodes.append(helper.make_node("Mul", [node.input[0], f"{node.name}_smooth_scale"], [f"{node.name}_smoothed"], name=f"{node.name}_smooth"))
            node.input[0] = f"{node.name}_smoothed"
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def quantize_blockwise_int8(src: Path, out: Path, *, block_size: int = BLOCK_SIZE) -> tuple[str, ...]:
    """Every MatMul left with a constant fp32 weight becomes MatMulNBits (8-bit symmetric weights, int8 compute)."""
    try:
        from onnxruntime.quantization import matmul_nbits_quantizer as nbits
    except ImportError as exc:  # it needs onnx-ir, part of the export extra
        raise ExportError(f"int8 export needs onnxruntime's MatMulNBits quantizer ({exc}); pip install 'embedrt[export]'.") from exc
    config = nbits.DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=ACCURACY_INT8, bits=8)
    quantizer = nbits.MatMulNBitsQuantizer(
        onnx.load(str(src)), bits=8, block_size=block_size, is_symmetric=True, accuracy_level=ACCURACY_INT8, algo_config=config
    )
    with _quiet_quantizers():
        quantizer.process()
    quantizer.model.save_model_to_file(str(out), use_external_data_format=False)
    return (f"int8:matmul_nbits_block{block_size}",)


@contextlib.contextmanager
def _quiet_quantizers() -> Iterator[None]:
    """onnxruntime's quantizers log advice and one line per node on the root logger: keep a CLI's output readable."""
    loggers = [logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class ArrayCalibration:
    """onnxruntime's CalibrationDataReader over a fixed list of input batches."""

    def __init__(self, batches: Iterable[dict[str, np.ndarray]]):
        self._batches = list(batches)
        self._iter: Iterator[dict[str, np.ndarray]] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iter, None)

    def rewind(self) -> None:
        self._iter = iter(self._batches)


def quantize_static_int8(
    src: Path, out: Path, calibration: Iterable[dict[str, np.ndarray]], *, exclude: Iterable[str] = (), reduce_range: bool = False
) -> tuple[str, ...]:
    """QDQ int8: per-channel weights, activations scaled from the calibration batches (for CNNs: Conv, Gemm, MatMul).

    `reduce_range`: 7-bit weights for CPUs whose u8 x s8 kernel saturates.
    """

    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    with _quiet_quantizers(), work_dir("int8") as work:
        unshared = Path(work) / "unshared.onnx"
        onnx.save(unshare_initializers(onnx.load(str(src))), str(unshared))
        quantize_static(
            str(unshared),
            str(out),
            ArrayCalibration(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range=reduce_range,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=list(exclude),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return ("int8:static_qdq_per_channel",) + ((WEIGHTS_7BIT,) if reduce_range else ())


def unshare_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give every node its own copy of each constant it reads, directly or through an Identity.

    The TorchScript exporter stores equal constants once (the all-zero biases of folded BatchNorms, for
    one): a bias shared by several Convs gets one int8 scale where each Conv needs its own
    (input scale x weight scale), so ONNX Runtime cannot fuse those Convs into QLinearConv and runs them
    in fp32 between DequantizeLinear and QuantizeLinear: ResNet-50 int8 at 16 images/s instead of 87.
    """
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}

    def copy_of(name: str, new_name: str) -> str:
        tensor = onnx.TensorProto()
        tensor.CopyFrom(inits[name])
        tensor.name = new_name
        graph.initializer.append(tensor)
        inits[new_name] = tensor
        return new_name

    nodes = []
    for node in graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy_of(node.input[0], node.output[0])  # the Identity's output becomes a constant of its own
        else:
            nodes.append(node)
    taken: set[str] = set()
    for node in nodes:
        for k, name in enumerate(node.input):
            if name in inits:
                if name in taken:
                    node.input[k] = copy_of(name, f"{name}_{node.name or len(inits)}_{k}")
                taken.add(name)
    read = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    kept = [i for i in graph.initializer if i.name in read]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model
