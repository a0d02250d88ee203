"""Checkpoint -> ONNX export dirs. Needs the `export` extra (torch, transformers, onnx); images also the `image` extra.

The functions are imported on first use: the torch-free modules here (staging, which `embedrt triton build`
uses) must import on the runtime alone.
"""

import importlib
from typing import Any

__all__ = ["export_text", "export_image", "export_module", "optimize_export"]

_LAZY = {
    "export_text": "embedrt.export.text",
    "export_image": "embedrt.export.image",  # also needs Pillow, which a text-only install lacks
    "export_module": "embedrt.export.module",
    "optimize_export": "embedrt.export.variants",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.export' has no attribute {name!r}")
