"""The one pooling definition (mean, cls, max) and L2 normalisation, in numpy.

Matches sentence-transformers' Pooling and Normalize modules; the export puts the same
arithmetic inside the graph (embedrt.export.graph_pooling) and both are tested against it.
"""

from __future__ import annotations

import numpy as np

from embedrt.errors import EmbedrtError

POOLING_MODES = ("mean", "cls", "max")


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, mode: str) -> np.ndarray:
    """(batch, length, hidden) + (batch, length) -> (batch, hidden), float32."""
    hidden = token_embeddings.astype(np.float32, copy=False)
    mask = attention_mask.astype(np.float32)[:, :, None]
    if mode == "mean":
        summed = (hidden * mask).sum(axis=1)
        counts = np.clip(mask.sum(axis=1), 1e-9, None)
        return summed / counts
    if mode == "cls":
        return hidden[:, 0].copy()
    if mode == "max":
        masked = np.where(mask > 0, hidden, np.float32(-1e9))
        return masked.max(axis=1)
    raise EmbedrtError(f"pooling={mode!r} is not one of {', '.join(POOLING_MODES)}.")


def l2_normalize(vectors: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero (as torch.nn.functional.normalize does)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, eps)).astype(np.float32, copy=False)
