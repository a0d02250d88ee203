"""ImageEmbedder: input kinds, modes, EXIF, preprocessing arithmetic, batching order."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import embedrt
from embedrt.errors import ManifestError
from embedrt.runtime.image.preprocess import centre_box, resized_size
from image_samples import encoded, photo, photos, write

SAME = 1e-4  # max-abs between vectors of the same pixels; different photos differ by ~0.5 here


def test_path_bytes_pil_and_array_inputs_give_the_same_vector(resnet18, tmp_path):
    array = photo("astronaut")
    path = write(tmp_path / "astronaut.png", array)
    vectors = resnet18.embed([str(path), path, path.read_bytes(), Image.fromarray(array), array])
    assert vectors.shape == (5, 512) and vectors.dtype == np.float32
    assert np.abs(vectors - vectors[0]).max() < SAME


def test_vectors_come_back_in_caller_order_across_batches_and_workers(resnet18_dir, resnet18):
    images = photos() + [np.ascontiguousarray(p[::-1]) for p in photos()] + [photo("camera")]
    one_by_one = np.concatenate([resnet18.embed([image]) for image in images])
    batched = embedrt.ImageEmbedder(resnet18_dir, max_batch_size=3, workers=2).embed(images)
    assert np.abs(batched - one_by_one).max() < SAME
    assert np.abs(one_by_one[0] - one_by_one[1]).max() > 0.05  # rows are really different images


def test_progress_counts_every_image(resnet18_dir):
    seen = []
    embedrt.ImageEmbedder(resnet18_dir, max_batch_size=2).embed(photos() + [photo("camera")], progress=seen.append)
    assert seen == [2, 2, 1]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "LA", "1"])
def test_every_mode_is_converted_as_pillow_converts_it_to_rgb(resnet18, mode):
    image = Image.fromarray(photo("chelsea")).convert(mode)
    got, expected = resnet18.embed([image, image.convert("RGB")])
    assert np.abs(got - expected).max() < SAME


def test_grey_array_equals_the_grey_image_in_three_channels(resnet18):
    grey = photo("camera")
    got, expected = resnet18.embed([grey, np.repeat(grey[:, :, None], 3, axis=2)])
    assert np.abs(got - expected).max() < SAME


def test_exif_orientation_is_applied_before_preprocessing(resnet18):
    stored = Image.fromarray(photo("rocket"))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    tagged = encoded(stored, "PNG", exif=exif.tobytes())
    got, upright, as_stored = resnet18.embed([tagged, stored.transpose(Image.Transpose.ROTATE_270), stored])
    assert np.abs(got - upright).max() < SAME
    assert np.abs(got - as_stored).max() > 0.05


def test_a_solid_colour_becomes_the_imagenet_normalised_value(resnet18):
    red = np.zeros((300, 500, 3), dtype=np.uint8)
    red[:, :, 0] = 255
    pixels = resnet18.preprocess([red])
    assert pixels.shape == (1, 3, 224, 224) and pixels.dtype == np.float32
    expected = (np.array([1.0, 0.0, 0.0]) - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    assert np.abs(pixels[0].reshape(3, -1).T - expected).max() < 1e-5


def test_resize_and_crop_geometry_follow_torchvision():
    assert resized_size(500, 300, 256) == (426, 256)  # int(256 * 500 / 300), truncated
    assert resized_size(300, 500, 256) == (256, 426)
    assert resized_size(256, 256, 256) == (256, 256)
    assert centre_box(259, 256, 224) == (18, 16, 242, 240)  # round(17.5) == 18, round(16.0) == 16
    assert centre_box(257, 256, 224) == (16, 16, 240, 240)  # round(16.5) == 16: half to even, like torchvision


def test_empty_list_gives_zero_rows(resnet18):
    assert resnet18.embed([]).shape == (0, 512)


def test_load_returns_an_image_embedder_and_each_embedder_refuses_the_other_modality(resnet18_dir, minilm_dir):
    assert isinstance(embedrt.load(resnet18_dir), embedrt.ImageEmbedder)
    with pytest.raises(ManifestError, match="image export"):
        embedrt.TextEmbedder(resnet18_dir)
    with pytest.raises(ManifestError, match="text export"):
        embedrt.ImageEmbedder(minilm_dir)
