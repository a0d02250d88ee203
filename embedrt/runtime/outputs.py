"""Checks on what an engine returned, shared by the text and image embedders."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from embedrt.errors import OutputError


def check_finite(
    vectors: np.ndarray, what: str, offset: int = 0, *, indices: Sequence[int] | None = None, label: Callable[[int], str] | None = None
) -> None:
    """NaN or Inf in an output is an error naming the input, never a silent bad vector.

    Row r is input `what[offset + r]`, or `what[indices[r]]` when the rows are not contiguous;
    `label(index)` adds what the input is (an image's path).
    """
    if vectors.size == 0:
        return
    flat = vectors.reshape(len(vectors), -1)
    bad = np.flatnonzero(~np.isfinite(flat).all(axis=1))
    if bad.size:
        first = int(indices[bad[0]]) if indices is not None else int(bad[0]) + offset
        name = f"{what}[{first}]" + (f" {label(first)}" if label is not None else "")
        raise OutputError(f"the model produced NaN or Inf for {name} ({bad.size} input(s) in all); the engine or its precision is broken for this input.")
