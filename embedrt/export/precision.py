"""The export stage after the fp32 graph, for either modality: optional fusion, then precision conversion.

    fp32 graph -> [fuse] -> [int8 | fp16] -> model.onnx      (parity and the manifest are the exporter's job)
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from embedrt.errors import ExportError
from embedrt.export.optimize import OPTIMIZE_LEVELS, TransformerShape, fuse_graph, fuse_transformer
from embedrt.export.staging import work_dir

PRECISIONS = ("fp32", "int8", "fp16", "bf16")
PROVIDERS = ("cpu", "cuda", "tensorrt", "openvino")
# int8 weight width: "auto" asks this CPU's int8 kernel (embedrt.runtime.engines.cpu.u8s8_exact); "7" is for engines that
# will run on x86 CPUs without VNNI as well (an export made on a VNNI build box for an AVX2 fleet); "8" forces 8 bits.
INT8_WEIGHTS = ("auto", "8", "7")

# Why a GPU engine keeps the plain graph, by provider or modality.
_NO_GPU_FUSION = {
    "tensorrt": "TensorRT builds its own fused kernels and cannot run ONNX Runtime's fused ops (Attention, SkipLayerNormalization)",
    "image": "image graphs are fused by a CPU session, for the CPU provider",
}
Calibration = Callable[[], Iterable[dict[str, np.ndarray]]]  # input batches for static int8, made on demand


@dataclass(frozen=True)
class EnginePlan:
    """What to build: the precision, the graph optimisation, and the execution provider it is for."""

    precision: str = "fp32"
    optimize: str = "none"
    provider: str = "any"  # manifest.provider: "any", "cpu", "cuda" or "tensorrt"
    int8_weights: str = "auto"  # INT8_WEIGHTS

    @property
    def reduce_range(self) -> bool:
        """7-bit int8 weights: asked for, or chosen because this CPU's u8 x s8 kernel saturates."""
        if self.int8_weights == "auto":
            from embedrt.runtime.engines.cpu import u8s8_exact

            return not u8s8_exact()
        return self.int8_weights == "7"


def plan_engine(
    precision: str = "fp32", optimize: str | None = None, provider: str | None = None, *, modality: str = "text", int8_weights: str = "auto"
) -> EnginePlan:
    """Check a precision/optimize/provider request and fill in its defaults; refuse the combinations that are traps."""
    if precision not in PRECISIONS:
        raise ExportError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}.")
    if int8_weights not in INT8_WEIGHTS:
        raise ExportError(f"--int8-weights {int8_weights!r} is not one of {', '.join(INT8_WEIGHTS)}.")
    if int8_weights != "auto" and precision != "int8":
        raise ExportError(f"--int8-weights {int8_weights} applies to --precision int8 only (this export is {precision}).")
    if optimize is not None and optimize not in OPTIMIZE_LEVELS:
        raise ExportError(f"--optimize {optimize!r} is not one of {', '.join(OPTIMIZE_LEVELS)}.")
    if provider is not None and provider not in PROVIDERS:
        raise ExportError(f"--provider {provider!r} is not one of {', '.join(PROVIDERS)}.")
    if precision == "fp16":
        if provider not in ("cuda", "tensorrt"):
            raise ExportError(
                "--precision fp16 is for a GPU: on the CPU, ONNX Runtime runs fp16 about 100x slower than fp32. "
                "Pass --provider cuda or --provider tensorrt to build it for a GPU. For the CPU keep fp32 (the default), or int8 on a "
                "CPU with AVX-512 VNNI, bf16 on one with bf16 units (docs/precision.md, 'How to choose')."
            )
        gpu_fusion = modality == "text" and provider == "cuda"
        if optimize == "fuse" and not gpu_fusion:
            raise ExportError(f"--precision fp16 --provider {provider}: {_NO_GPU_FUSION[modality if provider == 'cuda' else provider]}; use --optimize none.")
        # The CUDA provider does not fuse a plain graph itself: the fused one runs 2-3x faster there (issue 25's profile).
        return EnginePlan("fp16", optimize or ("fuse" if gpu_fusion else "none"), provider)
    if precision == "bf16" or provider == "openvino":
        return _plan_bf16(precision, optimize, provider, modality)
    if precision == "int8":
        if provider not in (None, "cpu"):
            raise ExportError(f"--precision int8 builds CPU int8 kernels; --provider {provider} cannot run them fast. Use fp16 for a GPU.")
        # Text: fused attention stays fp32 around int8 matmuls. Images: the fp32 graph is quantised as exported.
        return EnginePlan("int8", optimize or ("fuse" if modality == "text" else "none"), "cpu", int8_weights)
    if optimize is None and provider == "cuda" and modality == "text":
        optimize = "fuse"  # the fused transformer graph for GPU, as for fp16
    if optimize == "fuse" and provider == "tensorrt":
        raise ExportError(f"--provider tensorrt: {_NO_GPU_FUSION['tensorrt']}; use --optimize none.")
    optimize = optimize or "none"
    if provider is None:
        # Fused CNN graphs are saved by a CPU session; fused text graphs run on CPU and CUDA alike.
        provider = "cpu" if (optimize == "fuse" and modality == "image") else "any"
    return EnginePlan("fp32", optimize, provider)


def _plan_bf16(precision: str, optimize: str | None, provider: str | None, modality: str) -> EnginePlan:
    """bf16: the plain fp32 graph, which OpenVINO compiles to bf16 on a CPU with bf16 units (its own fusions)."""
    if precision != "bf16" or provider not in (None, "openvino"):
        raise ExportError(f"--precision {precision} --provider {provider}: OpenVINO runs the bf16 engine (--precision bf16, "
                          "--provider openvino or unset); fp32, int8 and fp16 run on ONNX Runtime.")
    if modality != "text":
        raise ExportError(f"--precision bf16 is built for text encoders; for {modality} models use int8 (CPU) or fp16 (GPU).")
    if optimize == "fuse":
        raise ExportError("--precision bf16 keeps the plain graph (OpenVINO fuses it itself, and cannot read ONNX Runtime's fused ops); use --optimize none.")
    return EnginePlan("bf16", "none", "openvino")


def build_model(
    fp32_path: Path,
    out_path: Path,
    plan: EnginePlan,
    *,
    modality: str,
    transformer: TransformerShape | None = None,
    token_output: str | None = None,
    calibration: Calibration | None = None,
) -> tuple[str, ...]:
    """Write the engine `plan` asks for to `out_path`, from the fp32 graph at `fp32_path`; return the steps applied.

    `transformer` (text) is what the transformer fusions need; images get ONNX Runtime's CNN fusions;
    `token_output` names the token-embeddings tensor whose pooling stays fp32 in fp16;
    `calibration` makes the input batches int8 scales are measured on.
    """
    applied: list[str] = []
    with work_dir("build") as work:
        current = Path(fp32_path)
        if plan.optimize == "fuse":
            fused = Path(work) / "fused.onnx"
            if modality == "text":
                if transformer is None:
                    raise ExportError("transformer fusion needs the model's heads and hidden size (TransformerShape).")
                applied += fuse_transformer(current, fused, transformer, for_gpu=plan.provider in ("cuda", "tensorrt"))
            else:
                applied += fuse_graph(current, fused)
            current = fused
        if plan.precision == "int8":
            from embedrt.export.quantize import quantize_static_int8, quantize_text_int8

            if calibration is None:
                raise ExportError("int8 needs calibration inputs; the exporter passes them (sample text, sample photographs).")
            quantized = Path(work) / "int8.onnx"
            quantize = quantize_text_int8 if modality == "text" else quantize_static_int8
            applied += quantize(current, quantized, calibration(), reduce_range=plan.reduce_range)
            current = quantized
        elif plan.precision == "fp16":
            from embedrt.export.fp16 import convert_fp16

            half = Path(work) / "fp16.onnx"
            applied += convert_fp16(current, half, token_output=token_output, fused=plan.optimize == "fuse")
            current = half
        shutil.copyfile(current, out_path)
    return tuple(applied)
