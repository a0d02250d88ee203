"""`embedrt.load(DIR)`: the right embedder for an export dir, chosen by its manifest."""

from __future__ import annotations

import os
from typing import Any

from embedrt.default_model import resolve_model
from embedrt.manifest import read_manifest


def load(model: str | os.PathLike, device: str = "cpu", **options: Any):
    """A TextEmbedder, ImageEmbedder or FeatureEmbedder for an export dir (or 'default')."""
    path = resolve_model(model)
    manifest = read_manifest(path)
    if manifest.modality == "image":
        from embedrt.runtime.image import ImageEmbedder

        return ImageEmbedder(path, device=device, **options)
    if manifest.modality == "features":
        from embedrt.runtime.features import FeatureEmbedder

        return FeatureEmbedder(path, device=device, **options)
    from embedrt.runtime.text import TextEmbedder

    return TextEmbedder(path, device=device, **options)
