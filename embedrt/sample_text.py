"""Deterministic English text from a source every Python ships (the stdlib's `pydoc_data` help topics).

Benchmarks, calibration and tests draw their sentences and documents here, never from a download.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def _words() -> tuple[str, ...]:
    from pydoc_data import topics

    text = " ".join(topics.topics[k] for k in sorted(topics.topics))
    return tuple(w for w in re.split(r"\s+", text) if w and not set(w) <= set("*-=~^`'\""))


def sample_sentences(n: int, *, min_words: int = 4, max_words: int = 64, seed: int = 0) -> list[str]:
    """`n` texts of uniformly random word counts in [min_words, max_words], cut from consecutive prose."""
    words = _words()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_words, max_words + 1, size=n)
    starts = rng.integers(0, len(words) - max_words, size=n)
    return [" ".join(words[s : s + k]) for s, k in zip(starts, lengths)]


def sample_document(n_words: int, *, seed: int = 0) -> str:
    """One document of `n_words` words (the prose repeats when n_words exceeds the ~65,000 words available)."""
    words = _words()
    start = int(np.random.default_rng(seed).integers(0, len(words)))
    return " ".join(words[(start + i) % len(words)] for i in range(n_words))
