"""Real photographs scikit-image ships, and image files made from them, for the image tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def photo(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def photos() -> list[np.ndarray]:
    return [photo(name) for name in PHOTOS]


def encoded(image: Image.Image | np.ndarray, fmt: str = "PNG", **options) -> bytes:
    image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def write(path: Path, image: Image.Image | np.ndarray, fmt: str = "PNG", **options) -> Path:
    path.write_bytes(encoded(image, fmt, **options))
    return path
