"""Image exports: reading a torchvision / timm / ResNet checkpoint (source.py, resnet.py), its graph and export (exporter.py)."""

import importlib
from typing import Any

_LAZY = {"export_image": "embedrt.export.image.exporter", "measure_image_parity": "embedrt.export.image.exporter"}  # imported on first use: the package's own modules import without pulling in the others


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.export.image' has no attribute {name!r}")
