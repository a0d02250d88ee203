"""Checkpoint -> ONNX export dirs. Needs the `export` extra (torch, transformers, onnx); images also the `image` extra.

text/, image/ and features/ each read one modality's source and build its graph (exporter.py has the
export_* function). The steps every modality shares sit here: graph_pooling (pooling in the graph),
optimize (fusion), quantize and dense_int8 (int8), fp16, precision (the recipes), tensorrt_plan,
variants (optimize_export), parity and staging (writing an export dir).

The functions are imported on first use: the torch-free modules here (staging, which `embedrt triton build`
uses) must import on the runtime alone.
"""

import importlib
from typing import Any

__all__ = ["export_text", "export_image", "export_module", "optimize_export"]

_LAZY = {
    "export_text": "embedrt.export.text.exporter",
    "export_image": "embedrt.export.image.exporter",  # also needs Pillow, which a text-only install lacks
    "export_module": "embedrt.export.features.exporter",
    "optimize_export": "embedrt.export.variants",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt.export' has no attribute {name!r}")
