"""`embedrt.load(DIR)`: the right embedder for an export dir, chosen by its manifest.

A front door, above the runtime: for MODEL 'default' it may call the exporter (embedrt.default_model).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from embedrt.default_model import resolve_model
from embedrt.manifest import read_manifest

# manifest modality -> "module:class"; imported on use, so that a text model needs no Pillow.
EMBEDDERS = {
    "text": "embedrt.runtime.text.embedder:TextEmbedder",
    "image": "embedrt.runtime.image.embedder:ImageEmbedder",
    "features": "embedrt.runtime.features.embedder:FeatureEmbedder",
}


def load(model: str | os.PathLike, device: str = "cpu", **options: Any):
    """A TextEmbedder, ImageEmbedder or FeatureEmbedder for an export dir (or 'default')."""
    path = resolve_model(model)
    manifest = read_manifest(path)
    module, _, name = EMBEDDERS[manifest.modality].partition(":")
    return getattr(importlib.import_module(module), name)(path, device=device, **options)
