"""Variable-length text on Triton: pad token ids to a multiple of a few tokens.

Triton's dynamic batcher merges only requests whose tensors have the same shape. The tokenizer
model pads every request of one executed batch to the same rounded length, and clients that send
token ids themselves (TritonBackend) round the same way, so concurrent requests of different
lengths reach the encoder with equal shapes and are batched together. Padding is masked, so the
vectors do not change; the price is at most `multiple - 1` extra tokens per text.
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
