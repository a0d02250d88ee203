"""embedrt: PyTorch embedding encoders as ONNX engines, served in-process or on Triton."""

from __future__ import annotations

from typing import Any

from embedrt.errors import (
    EmbedrtError,
    ExportError,
    InputError,
    ManifestError,
    OutputError,
    ParityError,
    ProviderError,
    SelfCheckError,
    TritonError,
)
from embedrt.loader import load

__version__ = "0.1.0"

__all__ = [
    "load",
    "TextEmbedder",
    "ImageEmbedder",
    "FeatureEmbedder",
    "TritonEmbedder",
    "EmbedrtError",
    "ExportError",
    "InputError",
    "ManifestError",
    "OutputError",
    "ParityError",
    "ProviderError",
    "SelfCheckError",
    "TritonError",
]

# Imported on first use so that `import embedrt` stays light and optional extras stay optional.
_LAZY = {
    "TextEmbedder": "embedrt.runtime.text.embedder",
    "ImageEmbedder": "embedrt.runtime.image.embedder",
    "FeatureEmbedder": "embedrt.runtime.features.embedder",
    "TritonEmbedder": "embedrt.triton.client",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'embedrt' has no attribute {name!r}")
