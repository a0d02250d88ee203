"""Parity on the user's own inputs: an export against its PyTorch source, or one export against another.

Needs the export extra (torch), as the export gate does. The measure is the export gate's (embedrt.export.parity.compare: cosine min/mean, max-abs, with the
precision's thresholds) plus top-k neighbour agreement, which says whether search results change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embedrt.errors import EmbedrtError
from embedrt.evaluation.metrics import neighbour_agreement

PARITY_BATCH = 8


def agreement(reference: np.ndarray, candidate: np.ndarray, *, precision: str, reference_name: str, k: int = 10) -> dict[str, Any]:
    """compare() of two (n, dim) arrays, top-k neighbour agreement, and pass/fail against `precision`'s gate."""
    # embedrt.export imports torch on the way to its parity module: only parity runs pay for it.
    from embedrt.export.parity import THRESHOLDS, compare, parity_report

    measured: dict[str, Any] = compare(reference, candidate)
    if len(reference) >= 2:
        k = min(k, len(reference) - 1)
        measured[f"neighbour_agreement@{k}"] = neighbour_agreement(reference, candidate, k)
    gate_precision = precision if precision in THRESHOLDS else "fp32"
    return parity_report(gate_precision, measured, reference=reference_name)


def pytorch_vectors(embedder, texts: Sequence[str], source: str | Path | None = None) -> np.ndarray:
    """Pooled vectors of `texts` from the PyTorch checkpoint the export was made from, tokenised as the runtime does."""
    try:
        import torch

        from embedrt.export.staging import fingerprint
        from embedrt.export.text.exporter import encoder_graph
        from embedrt.export.text.source import read_text_source
    except ImportError as exc:
        raise EmbedrtError(f"parity against PyTorch needs the export extra ({exc}): pip install 'embedrt[export]'.") from exc
    from embedrt.runtime.batching import iter_chunks
    from embedrt.runtime.text.tokenization import pad_batch

    manifest = embedder.manifest
    if manifest.modality != "text":
        raise EmbedrtError(f"{embedder.path}: parity against PyTorch is measured for text exports; compare two image exports with --compare.")
    recorded = manifest.source.get("path")
    path = Path(source) if source is not None else Path(recorded or "")
    if not source and not (recorded and path.is_dir()):
        raise EmbedrtError(f"{embedder.path}: its source {recorded!r} is not on this machine; pass --source DIR (the checkpoint it was exported from).")
    src = read_text_source(path, pooling=manifest.pooling, normalize=manifest.normalize, max_length=manifest.text.max_length)
    if source is None and manifest.source.get("fingerprint") and fingerprint(src.fingerprint_files()) != manifest.source["fingerprint"]:
        raise EmbedrtError(f"{path}: the checkpoint changed since {embedder.path} was exported from it (fingerprint differs); re-export, or pass --source with the original.")
    graph = encoder_graph(src, manifest.pooling, manifest.normalize)
    encoded = embedder.tokenize(list(texts))
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in embedder.backend.input_names]
    out = []
    for chunk in iter_chunks(np.arange(len(texts)), PARITY_BATCH):
        inputs = pad_batch(encoded, chunk, names, manifest.text.pad_token_id)
        with torch.no_grad():
            out.append(graph(*(torch.from_numpy(inputs[n]) for n in names))[1].numpy())
    return np.concatenate(out).astype(np.float32)


def source_parity(embedder, texts: Sequence[str], *, source: str | Path | None = None, k: int = 10) -> dict[str, Any]:
    """The export against its PyTorch source on `texts`."""
    reference = pytorch_vectors(embedder, texts, source)
    report = agreement(reference, embedder.embed(list(texts)), precision=embedder.manifest.precision, reference_name="pytorch fp32 (source)", k=k)
    return {"task": "parity", "model": str(embedder.path), **report}


def engine_parity(reference_embedder, candidate_embedder, texts: Sequence[str], *, k: int = 10) -> dict[str, Any]:
    """One export against another on `texts` (fp32 against int8, say): what the faster engine changes."""
    reference = reference_embedder.embed(list(texts))
    candidate = candidate_embedder.embed(list(texts))
    if reference.shape != candidate.shape:
        raise EmbedrtError(f"{reference_embedder.path} gives {reference.shape[1]}-d vectors and {candidate_embedder.path} {candidate.shape[1]}-d; compare exports of the same model.")
    report = agreement(reference, candidate, precision=candidate_embedder.manifest.precision, reference_name=str(reference_embedder.path), k=k)
    return {"task": "parity", "model": str(candidate_embedder.path), **report}
