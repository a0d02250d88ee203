"""export_image: HF ResNetModel dirs, torchvision architectures with weights or random init, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import embedrt
from embedrt.errors import ExportError
from embedrt.export import export_image
from embedrt.export.image.resnet import ResNetFeatures
from embedrt.export.image.source import IMAGENET, preprocessing_from_hf, read_image_source
from embedrt.export.parity import compare
from embedrt.manifest import read_manifest
from image_samples import photo, photos

MIN_COSINE = 0.99999
CONVNEXT_PROCESSOR = {  # what HF ResNet checkpoints (microsoft/resnet-50) ship
    "image_processor_type": "ConvNextImageProcessor",
    "crop_pct": 0.875,
    "do_normalize": True,
    "do_resize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "resample": 3,
    "size": {"shortest_edge": 224},
}


@pytest.fixture(scope="module")
def hf_resnet(tmp_path_factory):
    """A random-init transformers ResNetModel (seed 0, bottleneck layout) saved as a local dir with its processor config."""
    from transformers import ResNetConfig, ResNetModel

    path = tmp_path_factory.mktemp("hf") / "resnet"
    torch.manual_seed(0)
    config = ResNetConfig(depths=[1, 2, 2, 1], hidden_sizes=[64, 128, 256, 512], embedding_size=32, layer_type="bottleneck")
    model = ResNetModel(config).eval()
    model.save_pretrained(path)
    (path / "preprocessor_config.json").write_text(json.dumps(CONVNEXT_PROCESSOR))
    return path, model


def test_hf_resnet_dir_exports_with_its_processor_config_and_matches_transformers_on_photos(hf_resnet, tmp_path):
    path, model = hf_resnet
    out = export_image(path, tmp_path / "export")
    manifest = read_manifest(out)
    assert (manifest.modality, manifest.dim, manifest.pooled_in_graph, manifest.normalize) == ("image", 512, True, False)
    assert (manifest.image.resize, manifest.image.crop, manifest.image.interpolation) == (256, 224, "bicubic")
    assert manifest.source["kind"] == "transformers" and manifest.source["preprocessing_from"] == "preprocessor_config.json"
    assert manifest.parity["passed"] and manifest.parity["min_cosine"] >= MIN_COSINE and manifest.parity["n"] == 8
    embedder = embedrt.ImageEmbedder(out)
    images = photos() + [photo("camera")]
    with torch.no_grad():
        reference = model(pixel_values=torch.from_numpy(embedder.preprocess(images))).pooler_output.flatten(1).numpy()
    measured = compare(reference, embedder.embed(images))
    assert measured["min_cosine"] >= MIN_COSINE, measured


def test_hf_dir_without_processor_config_takes_the_torchvision_imagenet_transform(hf_resnet, tmp_path):
    path, _ = hf_resnet
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes((path / name).read_bytes())
    source = read_image_source(bare)
    assert source.preprocessing == IMAGENET
    assert source.record["preprocessing_from"] == "torchvision ImageNet defaults"


def test_processor_configs_with_a_crop_size_or_a_fixed_shape():
    clip_like = {"size": {"shortest_edge": 224}, "do_center_crop": True, "crop_size": {"height": 224, "width": 224}, "resample": 3,
                 "image_mean": [0.48, 0.46, 0.41], "image_std": [0.27, 0.26, 0.28]}
    prep = preprocessing_from_hf(clip_like, "preprocessor_config.json")
    assert (prep.resize, prep.crop, prep.interpolation, prep.mean) == (224, 224, "bicubic", (0.48, 0.46, 0.41))
    with pytest.raises(ExportError, match="fixed shape"):
        preprocessing_from_hf({"size": {"height": 224, "width": 224}}, "preprocessor_config.json")


@pytest.mark.slow
def test_resnet50_random_init_export_for_benchmarks(tmp_path):
    out = export_image("resnet50", tmp_path / "r50", random_init=True)
    manifest = read_manifest(out)
    assert manifest.dim == 2048
    assert manifest.source == {"kind": "torchvision", "architecture": "resnet50", "random_init": True, "seed": 0}
    assert manifest.parity["min_cosine"] >= MIN_COSINE
    embedder = embedrt.ImageEmbedder(out)
    one, five = embedder.embed(photos()[:1]), embedder.embed(photos() + [photo("camera")])
    assert five.shape == (5, 2048) and np.abs(one[0] - five[0]).max() < 1e-4  # dynamic batch axis


def _saved_resnet18(tmp_path):
    torch.manual_seed(3)
    model = ResNetFeatures("resnet18")
    state = dict(model.state_dict(), **{"fc.weight": torch.zeros(1000, 512), "fc.bias": torch.zeros(1000)})
    return model, state


def test_state_dict_checkpoint_and_safetensors_weights_all_load(tmp_path):
    from safetensors.torch import save_file

    model, state = _saved_resnet18(tmp_path)
    torch.save(state, tmp_path / "plain.pth")
    torch.save({"model_state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "ckpt.pt")
    save_file(state, str(tmp_path / "w.safetensors"))
    expected = model.conv1.weight
    for name in ("plain.pth", "ckpt.pt", "w.safetensors"):
        source = read_image_source("resnet18", weights=tmp_path / name)
        assert torch.equal(source.model.conv1.weight, expected), name
        assert source.record["weights"].endswith(name) and len(source.record["fingerprint"]) == 64


def test_weights_of_another_architecture_are_refused_naming_the_right_one(tmp_path):
    _, state = _saved_resnet18(tmp_path)
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(ExportError, match=r"not a torchvision resnet50 state dict .*look like resnet18"):
        read_image_source("resnet50", weights=tmp_path / "r18.pth")


def test_a_pickled_whole_model_is_refused(tmp_path):
    torch.save(ResNetFeatures("resnet18"), tmp_path / "whole.pth")
    with pytest.raises(ExportError, match=r"whole\.pth: holds pickled Python objects .* save model\.state_dict\(\) instead"):
        read_image_source("resnet18", weights=tmp_path / "whole.pth")


def test_an_architecture_without_weights_needs_random_init_and_nothing_is_written(tmp_path):
    with pytest.raises(ExportError, match="--random-init"):
        export_image("resnet50", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExportError, match="exclude each other"):
        read_image_source("resnet18", weights=tmp_path / "w.pth", random_init=True)
    with pytest.raises(ExportError, match="--weights .*missing.pth: no such file"):
        read_image_source("resnet18", weights=tmp_path / "missing.pth")


def test_an_unknown_source_is_refused(tmp_path):
    with pytest.raises(ExportError, match="neither a ResNet architecture"):
        read_image_source("vgg16")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ExportError, match="model_type 'bert'"):
        read_image_source(tmp_path)


def test_an_hf_classification_checkpoint_exports_its_backbone_without_the_head(tmp_path):
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=8, num_labels=5)
    classifier = ResNetForImageClassification(config).eval()
    classifier.save_pretrained(tmp_path / "cls")
    source = read_image_source(tmp_path / "cls")
    pixels = torch.from_numpy(np.stack([np.full((3, 224, 224), v, dtype=np.float32) for v in (-1.0, 0.5)]))
    with torch.no_grad():
        assert source.dim == 128
        assert torch.equal(source.model(pixels), classifier.resnet(pixels).pooler_output.flatten(1))
