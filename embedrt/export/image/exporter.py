"""ResNet (torchvision architecture + weights, or HF ResNetModel dir) -> export dir (model.onnx + embedrt.json), proven against PyTorch."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from embedrt.errors import ExportError
from embedrt.export.graph_pooling import l2_normalize
from embedrt.export.image.source import read_image_source
from embedrt.export.parity import compare, gate, parity_report
from embedrt.export.precision import build_model, plan_engine
from embedrt.export.staging import model_file_record, staged_dir, work_dir
from embedrt.manifest import MODEL_NAME, ImagePreprocessing, Manifest, TensorSpec, file_sha256, write_manifest
from embedrt.runtime.batching import iter_chunks
from embedrt.runtime.engines.cpu import cpu_record
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.runtime.engines.reference import REFERENCE_NAME, write_reference
from embedrt.runtime.image.embedder import IMAGE_INPUT, IMAGE_OUTPUT
from embedrt.runtime.image.preprocess import load_pixels
from embedrt.versions import package_versions

log = logging.getLogger("embedrt")

DEFAULT_OPSET = 17
PARITY_BATCH = 4
# Photographs scikit-image ships (colour, grey, RGBA, wide, tall after cropping): the fixed parity inputs.
# Photographs (and textures, scans) it also ships, kept apart from the parity ones: int8 calibration.
CALIBRATION_PHOTOS = ("immunohistochemistry", "cat", "retina", "brick", "grass", "gravel", "moon", "clock", "coins", "cell", "page", "text")
PARITY_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "logo", "hubble_deep_field", "colorwheel")
# The self-check on load: thumbnails of three parity photographs, kept in the export dir (about 100 kB).
REFERENCE_PHOTOS = ("astronaut", "coffee", "chelsea")
REFERENCE_SIDE = 128


class ImageEncoderGraph(torch.nn.Module):
    """Pooled features, optionally L2-normalised: what the exported graph computes."""

    def __init__(self, features: torch.nn.Module, normalize: bool):
        super().__init__()
        self.features = features
        self.normalize = normalize

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.features(pixel_values)
        return l2_normalize(pooled) if self.normalize else pooled


def export_image(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    random_init: bool = False,
    seed: int = 0,
    normalize: bool = False,
    opset: int = DEFAULT_OPSET,
    precision: str = "fp32",
    optimize: str | None = None,
    provider: str | None = None,
    int8_weights: str = "auto",
    overwrite: bool = False,
) -> Path:
    """Export a ResNet to `out`: 'resnet18'...'resnet152' with `weights` (or `random_init`), or a local HF ResNetModel dir.

    The output is the pooled feature vector (no classifier), L2-normalised in the graph if `normalize`.
    `precision` "int8" is static QDQ calibrated on other scikit-image photographs; `optimize` "fuse" is ONNX
    Runtime's CNN fusions (embedrt.export.precision.plan_engine has the rules and defaults).
    The export fails (and writes nothing) if the precision's parity on the fixed photographs is missed.
    """
    plan = plan_engine(precision, optimize, provider, modality="image", int8_weights=int8_weights)
    src = read_image_source(source, weights=weights, random_init=random_init, seed=seed)
    graph = ImageEncoderGraph(src.model, normalize).eval()
    out = Path(out)
    sources = [Path(p) for p in (source, weights) if p is not None and Path(p).exists()]
    with staged_dir(out, kind="image", overwrite=overwrite, sources=sources) as tmp, work_dir("fp32") as work:
        model_path = tmp / MODEL_NAME
        fp32_path = Path(work) / MODEL_NAME
        export_image_onnx(graph, fp32_path, src.preprocessing.crop, opset)
        optimizations = build_model(fp32_path, model_path, plan, modality="image", calibration=lambda: calibration_batches(src.preprocessing))
        report = measure_image_parity(graph, model_path, src.preprocessing, precision=plan.precision)
        gate(report, str(source))
        write_image_reference(tmp, graph, src.preprocessing)
        crop = src.preprocessing.crop
        manifest = Manifest(
            modality="image",
            dim=src.dim,
            inputs=(TensorSpec(IMAGE_INPUT, "float32", ("batch", 3, crop, crop)),),
            outputs=(TensorSpec(IMAGE_OUTPUT, "float32", ("batch", src.dim)),),
            pooling="none",
            normalize=normalize,
            pooled_in_graph=True,
            precision=plan.precision,
            opset=opset,
            provider=plan.provider,
            optimizations=optimizations,
            image=src.preprocessing,
            source=src.record,
            versions=package_versions(),
            parity=report,
            model_file=model_file_record(model_path),
            files={REFERENCE_NAME: file_sha256(tmp / REFERENCE_NAME)},
            machine=cpu_record(),
        )
        write_manifest(tmp, manifest)  # last: a dir without it is never taken for an export
    log.info("embedrt: exported %s to %s (min cosine %.7f)", source, out, report["min_cosine"])
    return out


def export_image_onnx(graph: torch.nn.Module, path: Path, crop: int, opset: int = DEFAULT_OPSET) -> None:
    """The fp32 graph: pixel_values (batch, 3, crop, crop) -> image_embedding (batch, dim), batch axis dynamic."""
    example = torch.zeros((2, 3, crop, crop), dtype=torch.float32)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings from transformers; dynamo=False is deliberate
        torch.onnx.export(
            graph,
            (example,),
            str(path),
            input_names=[IMAGE_INPUT],
            output_names=[IMAGE_OUTPUT],
            dynamic_axes={IMAGE_INPUT: {0: "batch"}, IMAGE_OUTPUT: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter: stable names, folds BatchNorm constants
        )


def parity_images() -> list[np.ndarray]:
    """The fixed parity inputs: scikit-image's sample photographs, as the HWC/HW uint8 arrays it ships."""
    try:
        import skimage.data
    except ImportError as exc:
        raise ExportError("the image parity gate reads scikit-image's sample photographs: pip install 'embedrt[export]'.") from exc
    return [getattr(skimage.data, name)() for name in PARITY_PHOTOS]


def write_image_reference(export_dir: Path, graph: torch.nn.Module, preprocessing: ImagePreprocessing) -> None:
    """The reference thumbnails and their PyTorch vectors (through the runtime's preprocessing), for the self-check on load."""
    import skimage.data
    from PIL import Image, ImageOps

    side = (REFERENCE_SIDE, REFERENCE_SIDE)
    images = np.stack([np.asarray(ImageOps.fit(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"), side)) for name in REFERENCE_PHOTOS])
    with torch.no_grad():
        vectors = graph(torch.from_numpy(np.stack([load_pixels(image, preprocessing) for image in images]))).numpy()
    write_reference(export_dir, {"images": images}, vectors)


def calibration_batches(preprocessing: ImagePreprocessing) -> list[dict[str, np.ndarray]]:
    """Static int8 calibration inputs: scikit-image photographs other than the parity ones, preprocessed as the runtime does."""
    import skimage.data

    pixels = np.stack([load_pixels(getattr(skimage.data, name)(), preprocessing) for name in CALIBRATION_PHOTOS])
    return [{IMAGE_INPUT: chunk} for chunk in iter_chunks(pixels, PARITY_BATCH)]


def parity_pixels(preprocessing: ImagePreprocessing) -> np.ndarray:
    """The parity photographs through the runtime's own preprocessing: float32 (n, 3, crop, crop)."""
    return np.stack([load_pixels(image, preprocessing) for image in parity_images()])


def measure_image_parity(
    torch_model: torch.nn.Module,
    onnx_path: str | os.PathLike,
    preprocessing: ImagePreprocessing,
    *,
    precision: str = "fp32",
    device: str = "cpu",
) -> dict:
    """PyTorch (fp32) vs the ONNX graph at `onnx_path` on the parity photographs: the manifest's parity section."""
    pixels = parity_pixels(preprocessing)
    backend = OnnxBackend(Path(onnx_path), device=device)
    ref, got = [], []
    for chunk in iter_chunks(pixels, PARITY_BATCH):
        with torch.no_grad():
            ref.append(torch_model(torch.from_numpy(np.ascontiguousarray(chunk))).numpy())
        got.append(backend.run({IMAGE_INPUT: chunk}, [IMAGE_OUTPUT])[IMAGE_OUTPUT])
    measured = compare(np.concatenate(ref), np.concatenate(got))
    measured["inputs"] = "scikit-image photographs: " + ", ".join(PARITY_PHOTOS)
    return parity_report(precision, measured)
