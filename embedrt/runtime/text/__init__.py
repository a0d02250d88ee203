"""Text: tokenisation (tokenization.py), the embedder (embedder.py), long documents (chunking.py), pooling (pooling.py)."""

import importlib
from typing import Any

_LAZY = {"TextEmbedder": "embedrt.runtime.text.embedder"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.runtime.text' has no attribute {name!r}")
