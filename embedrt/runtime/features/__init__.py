"""Feature rows: checking a row's columns (rows.py) and the embedder (embedder.py)."""

import importlib
from typing import Any

_LAZY = {"FeatureEmbedder": "embedrt.runtime.features.embedder"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.runtime.features' has no attribute {name!r}")
