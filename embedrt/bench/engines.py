"""The contenders: embedrt on an export dir, and the PyTorch baselines a user would otherwise run.

Every engine embeds a list of inputs at a batch size (None: its own default batching) and
returns float32 vectors. Baselines: sentence-transformers fp32 and bf16 for text, the same
ResNet in PyTorch eager for images, and PyTorch fp16 on a CUDA GPU when there is one.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from embedrt.errors import EmbedrtError
from embedrt.manifest import Manifest
from embedrt.runtime.batching import iter_chunks

EMBEDRT = "embedrt"
BASELINE = "baseline"
ST_DEFAULT_BATCH = 32  # sentence-transformers' encode() default batch size
# Its best batch on a GPU, measured beside the default: on an H200 (issue 25), fp16 at 256 ran 1.6-1.7x its batch-32 rate.
ST_BEST_GPU_BATCH = 256
IMAGE_DEFAULT_BATCH = 32


@dataclass
class Engine:
    label: str  # "embedrt fp32", "pytorch bf16": what a table shows
    role: str  # EMBEDRT | BASELINE
    precision: str
    provider: str
    embed: Callable[[Sequence[Any], int | None], np.ndarray]
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """`pytorch_bf16`: the label as it appears in ratio field names (speedup_vs_pytorch_bf16)."""
        return re.sub(r"[^a-z0-9]+", "_", self.label.lower()).strip("_")


def _variant_label(manifest: Manifest) -> str:
    """'embedrt fp32', 'embedrt fp32 fused', 'embedrt int8', 'embedrt fp16': the precision, and fusion where it tells fp32s apart."""
    fused = manifest.precision == "fp32" and any(o.startswith("fuse") for o in manifest.optimizations)
    return f"{EMBEDRT} {manifest.precision}" + (" fused" if fused else "")


# -- embedrt ------------------------------------------------------------------------------------------
def embedrt_text(path: Path, device: str = "cpu") -> Engine:
    """A TextEmbedder per batch size, all sharing one ONNX Runtime session."""
    from embedrt.runtime.text.embedder import TextEmbedder

    base = TextEmbedder(path, device=device)
    by_batch: dict[int | None, TextEmbedder] = {None: base}

    def embed(texts: Sequence[str], batch: int | None) -> np.ndarray:
        if batch not in by_batch:
            # the batch size binds, never the token budget: a fixed-batch workload means exactly that
            by_batch[batch] = TextEmbedder(path, device=device, backend=base.backend, max_batch_size=batch,
                                           max_batch_tokens=batch * base.max_length)
        return by_batch[batch].embed(texts)

    return Engine(_variant_label(base.manifest), EMBEDRT, base.manifest.precision, ",".join(base.providers)[:80], embed,
                  {"path": str(path), "optimizations": list(base.manifest.optimizations),
                   "max_batch_tokens": base.max_batch_tokens, "intra_op_threads": _ort_threads()})


def embedrt_image(path: Path, device: str = "cpu") -> Engine:
    from embedrt.runtime.image.embedder import ImageEmbedder

    base = ImageEmbedder(path, device=device)
    by_batch: dict[int | None, ImageEmbedder] = {None: base}

    def embed(images: Sequence[np.ndarray], batch: int | None) -> np.ndarray:
        if batch not in by_batch:
            by_batch[batch] = ImageEmbedder(path, device=device, backend=base.backend, max_batch_size=batch)
        return by_batch[batch].embed(images)

    return Engine(_variant_label(base.manifest), EMBEDRT, base.manifest.precision, ",".join(base.providers)[:80], embed,
                  {"path": str(path), "optimizations": list(base.manifest.optimizations),
                   "decode_workers": base.workers, "intra_op_threads": _ort_threads()})


def _ort_threads() -> int:
    from embedrt.runtime.engines.session_options import physical_cores

    return physical_cores()


# -- PyTorch baselines --------------------------------------------------------------------------------
def _torch():
    try:
        import torch
    except ImportError as exc:
        raise EmbedrtError("the PyTorch baselines need torch: pip install 'embedrt[dev]' (or 'embedrt[export]' and sentence-transformers).") from exc
    return torch


def pytorch_baselines(device: str = "cpu") -> list[tuple[str, Any]]:
    """(precision, torch dtype) of the baselines this machine can run: fp32 and bf16; fp16 on a CUDA GPU."""
    torch = _torch()
    found = [("fp32", torch.float32), ("bf16", torch.bfloat16)]
    if device == "cuda":
        found.append(("fp16", torch.float16))
    return found


def sentence_transformers_text(source: Path, precision: str, dtype: Any, *, device: str = "cpu", max_seq_length: int | None = None) -> Engine:
    """What a user runs without embedrt: SentenceTransformer.encode, which also sorts by length and batches."""
    torch = _torch()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbedrtError("the text baseline needs sentence-transformers: pip install 'embedrt[dev]'.") from exc
    _quiet_transformers()
    model = SentenceTransformer(str(source), device=device)
    if max_seq_length:
        model.max_seq_length = max_seq_length
    if dtype is torch.float16:
        model = model.half()  # how sentence-transformers documents fp16 inference
    elif dtype is not torch.float32:
        model = model.to(dtype)
    model.eval()
    placed = {(p.device.type, p.dtype) for p in model.parameters()}
    if placed != {(device, dtype)}:  # a baseline that silently ran elsewhere made issue 25's 133 texts/s "fp16 cuda"
        raise EmbedrtError(f"the sentence-transformers {precision} baseline has its weights on {sorted(map(str, placed))}, "
                           f"not ({device}, {dtype}): it would not measure what its label says.")

    def embed(texts: Sequence[str], batch: int | None) -> np.ndarray:
        return model.encode(list(texts), batch_size=batch or ST_DEFAULT_BATCH, convert_to_numpy=True, show_progress_bar=False)

    torch_device = "cuda" if device == "cuda" else "cpu"
    return Engine(f"pytorch {precision}" + ("" if device == "cpu" else f" {device}"), BASELINE, precision, f"torch {torch_device}", embed,
                  {"library": "sentence-transformers", "source": str(source), "max_seq_length": model.max_seq_length,
                   "default_batch": ST_DEFAULT_BATCH, "torch_threads": torch.get_num_threads(), "weights": f"{device} {dtype}"})


def at_batch(engine: Engine, batch: int) -> Engine:
    """The same baseline (its model shared) at `batch` where a workload leaves the batch to the library: its best on a GPU."""
    return Engine(f"{engine.label} b{batch}", engine.role, engine.precision, engine.provider,
                  lambda items, b: engine.embed(items, b or batch), {**engine.details, "default_batch": batch})


def pytorch_image(model: Any, preprocess: Callable[[Sequence[Any]], np.ndarray], precision: str, dtype: Any, *, device: str = "cpu") -> Engine:
    """The same ResNet in PyTorch eager, fed by embedrt's own preprocessing (so only the engine differs)."""
    torch = _torch()
    model = copy.deepcopy(model).to(device=device, dtype=dtype).eval()  # .to() is in place: each precision its own copy

    def embed(images: Sequence[np.ndarray], batch: int | None) -> np.ndarray:
        size = batch or IMAGE_DEFAULT_BATCH
        out = []
        with torch.inference_mode():
            for chunk in iter_chunks(images, size):
                pixels = torch.from_numpy(preprocess(chunk)).to(device=device, dtype=dtype)
                out.append(model(pixels).float().cpu().numpy())
        return np.concatenate(out)

    return Engine(f"pytorch {precision}" + ("" if device == "cpu" else f" {device}"), BASELINE, precision, f"torch {device}", embed,
                  {"library": "torch eager", "preprocessing": "embedrt's (identical on both sides)", "torch_threads": torch.get_num_threads()})


def _quiet_transformers() -> None:
    """No 'Loading weights' bars between the benchmark's own progress lines."""
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except (ImportError, AttributeError):
        pass
