"""Graph fusion: ONNX Runtime's transformer optimizer for text encoders, its offline graph optimiser for CNNs.

Fused text graphs use com.microsoft ops (Attention, SkipLayerNormalization, BiasGelu) that the CPU and CUDA
providers both run. The image fusions are saved by a CPU session, so they are for the CPU provider.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedrt.errors import ExportError

log = logging.getLogger("embedrt")

OPTIMIZE_LEVELS = ("none", "fuse")
# Fused op -> the name the manifest records among its optimisations.
_FUSED_OPS = {
    "EmbedLayerNormalization": "fuse:embed_layernorm",
    "Attention": "fuse:attention",
    "MultiHeadAttention": "fuse:multi_head_attention",
    "SkipLayerNormalization": "fuse:skip_layernorm",
    "BiasGelu": "fuse:bias_gelu",
    "FastGelu": "fuse:fast_gelu",
    "Gelu": "fuse:gelu",
    "LayerNormalization": "fuse:layernorm",
}


@dataclass(frozen=True)
class TransformerShape:
    """What ONNX Runtime's transformer optimizer must be told about an encoder."""

    num_heads: int
    hidden_size: int
    model_type: str = "bert"


def transformer_shape(config: dict[str, Any]) -> TransformerShape:
    """Heads and hidden size from a Hugging Face config (BERT/RoBERTa names, or DistilBERT's n_heads/dim)."""
    heads = config.get("num_attention_heads") or config.get("n_heads")
    hidden = config.get("hidden_size") or config.get("dim")
    if not heads or not hidden:
        raise ExportError(f"--optimize fuse: the model config names no attention heads/hidden size ({sorted(config)[:12]}...); use --optimize none.")
    return TransformerShape(int(heads), int(hidden))


def fuse_transformer(src: Path, out: Path, shape: TransformerShape, *, for_gpu: bool = False) -> tuple[str, ...]:
    """Attention, skip-layernorm, gelu and embedding-layernorm fusions; returns the fusions that happened.

    `for_gpu`: the optimizer's GPU fusions (the CUDA provider's kernels), recorded as "fuse:gpu" before the fusions.
    """
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions(shape.model_type)
    # opt_level=0: only the python fusions, no provider-specific ORT rewrites baked into the file.
    model = optimizer.optimize_model(
        str(src), model_type=shape.model_type, num_heads=shape.num_heads, hidden_size=shape.hidden_size,
        optimization_options=options, opt_level=0, use_gpu=for_gpu,
    )
    stats = model.get_fused_operator_statistics()
    model.save_model_to_file(str(out))
    applied = tuple(sorted({name for op, name in _FUSED_OPS.items() if stats.get(op, 0) > 0}))
    if for_gpu:
        applied = ("fuse:gpu", *applied)
    log.info("embedrt: transformer fusions %s", {op: n for op, n in stats.items() if n})
    return applied


def fuse_graph(src: Path, out: Path) -> tuple[str, ...]:
    """ONNX Runtime's extended offline optimisation (Conv+activation, Gemm, ... fusions), saved for the CPU provider."""
    import onnxruntime as ort

    from embedrt.runtime.engines.session_options import session_options

    options = session_options(optimization="extended")
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(src), sess_options=options, providers=["CPUExecutionProvider"])
    if not out.is_file():
        raise ExportError(f"{src}: ONNX Runtime did not write the optimised graph to {out}.")
    return ("fuse:ort_extended",)
