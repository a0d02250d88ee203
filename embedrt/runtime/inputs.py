"""What counts as a list of inputs to embed, for text and images alike.

Any ordered collection is taken: a list, a tuple, a 1-D numpy array, a pandas Series, or an
iterator/generator (materialised once, so rows come back in the order it yielded them).
Refused with an InputError: a single input where a list is meant, a mapping (iterating a dict
gives its keys, which would be embedded silently), a set (it has no order to return rows in),
a DataFrame (iterating it gives column names), arrays of other than one dimension, and anything
that is not iterable at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

import numpy as np

from embedrt.errors import InputError


def as_input_list(items: Any, what: str, single: str) -> list:
    """`items` as a new list, or an InputError naming `what` ("texts", "images").

    `single` completes "... got a single X: " for a lone input where a list is meant.
    """
    kind = type(items).__name__
    if isinstance(items, Mapping):
        raise InputError(
            f"{what} is a {kind}; iterating it would embed its keys. Pass a list: list(d.values()) for its values, list(d) for its keys."
        )
    if isinstance(items, Set):
        raise InputError(f"{what} is a {kind}, which has no order to return rows in; pass a list, e.g. sorted({what}) or list({what}).")
    if kind == "DataFrame" and type(items).__module__.startswith("pandas"):
        raise InputError(f"{what} is a pandas DataFrame, whose iteration gives column names; pass one column, e.g. df['{what[:-1]}'].")
    if isinstance(items, np.ndarray) and items.ndim != 1:
        raise InputError(f"{what} is a {items.ndim}-d array {items.shape}; {single}")
    if not isinstance(items, Iterable):
        raise InputError(f"{what} must be a list, not {kind}; {single}")
    return list(items)


def check_options(*, truncate: Any = None, progress: Any = None) -> None:
    """The per-call options of embed: a bool (or None) for truncate, a callable (or None) for progress."""
    if truncate is not None and not isinstance(truncate, (bool, np.bool_)):
        raise InputError(f"truncate={truncate!r}: give True, False or None (the embedder's default).")
    if progress is not None and not callable(progress):
        raise InputError(f"progress={progress!r}: give a function called with the number of inputs just finished, or None.")
