"""Text exports: reading a Hugging Face / sentence-transformers checkpoint (source.py), its graph and export (exporter.py)."""

import importlib
from typing import Any

_LAZY = {"export_text": "embedrt.export.text.exporter"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.export.text' has no attribute {name!r}")
