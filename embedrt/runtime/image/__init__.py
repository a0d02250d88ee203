"""Images: decoding and preprocessing (preprocess.py, needs Pillow) and the embedder (embedder.py)."""

import importlib
from typing import Any

_LAZY = {"ImageEmbedder": "embedrt.runtime.image.embedder", "PartialEmbeddings": "embedrt.runtime.image.embedder", "ImageFailure": "embedrt.runtime.image.embedder"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.runtime.image' has no attribute {name!r}")
