"""Variable-length text on Triton: how requests of different lengths still get batched.

- python backend (what runs from PyPI): the encoder's inputs allow ragged batching, so the dynamic
  batcher merges requests of any length; the encoder model then re-batches all their rows by length
  under a token budget, as TextEmbedder does in-process (triton_models/encoder/model.py).
- native onnxruntime / tensorrt backends: the dynamic batcher merges only requests of equal shape.
  The tokenizer model pads every request of one executed batch to one length, and every length is
  rounded up to a multiple of a few tokens (here, and in TritonBackend for clients sending ids),
  so requests of nearby lengths share a shape. Padding is masked: the vectors do not change.
"""

from __future__ import annotations

import numpy as np


def padded_length(longest: int, multiple: int, max_length: int) -> int:
    """`longest` rounded up to a multiple of `multiple`, never beyond the model's max length (unless already past it)."""
    rounded = -(-longest // multiple) * multiple
    return max(longest, min(rounded, max_length))


def pad_tokens(inputs: dict[str, np.ndarray], length: int, pad_token_id: int) -> dict[str, np.ndarray]:
    """(batch, L) int arrays right-padded to `length`: input_ids with the pad id, masks and type ids with 0."""
    out = {}
    for name, array in inputs.items():
        extra = length - array.shape[1]
        if extra <= 0:
            out[name] = array
            continue
        value = pad_token_id if name == "input_ids" else 0
        out[name] = np.pad(array, ((0, 0), (0, extra)), constant_values=value)
    return out
