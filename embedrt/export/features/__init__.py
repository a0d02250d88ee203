"""Feature-model exports: any nn.Module over feature columns (source.py, columns.py, embedding_bag.py) and its export (exporter.py)."""

import importlib
from typing import Any

_LAZY = {"export_module": "embedrt.export.features.exporter"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.export.features' has no attribute {name!r}")
