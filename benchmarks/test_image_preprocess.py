"""Image stage 1: decode, resize the shorter side, centre-crop and normalise, as ImageEmbedder feeds the engine."""

import io

import numpy as np
import pytest

pytest.importorskip("PIL")
skimage_data = pytest.importorskip("skimage.data")

from embedrt.manifest import ImagePreprocessing  # noqa: E402
from embedrt.runtime.image.preprocess import load_pixels  # noqa: E402

IMAGENET = ImagePreprocessing(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def photo():
    return np.ascontiguousarray(skimage_data.astronaut())  # 512x512 RGB


@pytest.fixture(scope="module")
def jpeg_bytes(photo):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_preprocess_an_array(benchmark, photo):
    pixels = benchmark(load_pixels, photo, IMAGENET)
    assert pixels.shape == (3, 224, 224)


def test_decode_and_preprocess_a_jpeg(benchmark, jpeg_bytes):
    pixels = benchmark(load_pixels, jpeg_bytes, IMAGENET)
    assert pixels.shape == (3, 224, 224)


def test_preprocess_a_large_photo(benchmark):
    big = np.ascontiguousarray(skimage_data.retina())  # 1411x1411 RGB
    pixels = benchmark(load_pixels, big, IMAGENET)
    assert pixels.shape == (3, 224, 224)
