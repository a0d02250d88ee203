"""Checkpoint -> ONNX export dirs. Needs the `export` extra (torch, transformers, onnx); images also the `image` extra."""

from typing import Any

from embedrt.export.module import export_module
from embedrt.export.text import export_text
from embedrt.export.variants import optimize_export

__all__ = ["export_text", "export_image", "export_module", "optimize_export"]


def __getattr__(name: str) -> Any:
    if name == "export_image":  # imported on use: it needs Pillow, which a text-only install lacks
        from embedrt.export.image import export_image

        return export_image
    raise AttributeError(f"module 'embedrt.export' has no attribute {name!r}")
