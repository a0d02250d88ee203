"""Parity against torchvision itself: its ResNets and its ImageNet transform.

torchvision from PyPI does not import beside the CPU torch of .venv, so `make test` runs this file
a second time in .venv-vision (torch 2.14.1 + torchvision 0.29.1); in .venv it is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

torchvision = pytest.importorskip("torchvision", reason="torchvision is not importable here; `make test` runs this file in .venv-vision")
from torchvision import transforms  # noqa: E402

import embedrt  # noqa: E402
from embedrt.export import export_image  # noqa: E402
from embedrt.export.image.resnet import ARCHITECTURES, ResNetFeatures  # noqa: E402
from embedrt.export.parity import compare  # noqa: E402
from embedrt.manifest import ImagePreprocessing  # noqa: E402
from embedrt.runtime.image.preprocess import pixel_values  # noqa: E402
from image_samples import photo, photos  # noqa: E402

MIN_COSINE = 0.99999


def torchvision_transform(resize=256, crop=224, interpolation=transforms.InterpolationMode.BILINEAR, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    return transforms.Compose([
        transforms.Resize(resize, interpolation=interpolation),
        transforms.CenterCrop(crop),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])


def trained_looking(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random BatchNorm statistics and affine terms, so that a wrongly mapped BN layer would show."""
    generator = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=generator) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


def torchvision_vectors(model: torch.nn.Module, images: list[Image.Image]) -> np.ndarray:
    model.fc = torch.nn.Identity()
    batch = torch.stack([torchvision_transform()(image.convert("RGB")) for image in images])
    with torch.no_grad():
        return model.eval()(batch).numpy()


@pytest.fixture(scope="module")
def photo_images():
    return [Image.fromarray(p) for p in photos()] + [Image.fromarray(photo("camera")), Image.fromarray(photo("logo"))]


def test_resnet18_checkpoint_exports_with_torchvision_vectors_on_photos(tmp_path, photo_images):
    torch.manual_seed(0)
    model = trained_looking(torchvision.models.resnet18(), seed=1)
    checkpoint = tmp_path / "resnet18.pth"  # a training script's checkpoint: nested, DataParallel names, with the head
    torch.save({"epoch": 90, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, checkpoint)
    out = export_image("resnet18", tmp_path / "export", weights=checkpoint)
    got = embedrt.ImageEmbedder(out).embed(photo_images)
    measured = compare(torchvision_vectors(model, photo_images), got)
    assert got.shape == (len(photo_images), 512)
    assert measured["min_cosine"] >= MIN_COSINE, measured
    assert embedrt.ImageEmbedder(out).manifest.parity["min_cosine"] >= MIN_COSINE


def test_resnet50_safetensors_exports_with_torchvision_vectors_on_photos(tmp_path, photo_images):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = trained_looking(torchvision.models.resnet50(), seed=2)
    weights = tmp_path / "resnet50.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    out = export_image("resnet50", tmp_path / "export", weights=weights)
    got = embedrt.ImageEmbedder(out).embed(photo_images)
    measured = compare(torchvision_vectors(model, photo_images), got)
    assert got.shape == (len(photo_images), 2048)
    assert measured["min_cosine"] >= MIN_COSINE, measured


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_has_torchvision_state_dict_names_and_shapes(arch):
    ours = ResNetFeatures(arch).state_dict()
    theirs = {k: v for k, v in getattr(torchvision.models, arch)().state_dict().items() if not k.startswith("fc.")}
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.parametrize(
    "interpolation, name", [(transforms.InterpolationMode.BILINEAR, "bilinear"), (transforms.InterpolationMode.BICUBIC, "bicubic")]
)
def test_preprocessing_matches_the_torchvision_transform_within_1e_3(photo_images, interpolation, name):
    odd = Image.fromarray(photo("hubble_deep_field")).crop((0, 0, 517, 301))  # odd sizes: crop offsets round
    prep = ImagePreprocessing(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), interpolation=name)
    for image in photo_images + [odd, odd.rotate(90, expand=True)]:
        rgb = image.convert("RGB")
        expected = torchvision_transform(interpolation=interpolation)(rgb).numpy()
        got = pixel_values(rgb, prep)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-3
