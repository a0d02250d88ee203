"""What an image SOURCE is: a torchvision ResNet architecture name (+ weights file) or a local HF ResNetModel dir.

Either way the result is a torch module (batch, 3, crop, crop) -> (batch, dim) with the classifier
head removed, the preprocessing its weights expect, and a record of where it came from.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embedrt.errors import ExportError
from embedrt.export.image.resnet import ARCHITECTURES, ResNetFeatures, guess_architecture
from embedrt.export.staging import fingerprint
from embedrt.export.text.source import _read_json
from embedrt.manifest import MANIFEST_NAME, ImagePreprocessing

# torchvision's ImageNet transform: Resize(256) -> CenterCrop(224) -> ToTensor -> Normalize.
IMAGENET = ImagePreprocessing(resize=256, crop=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
# PIL resample codes as HF preprocessor configs write them.
HF_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}
WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")
CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model")  # where training scripts nest the weights
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")  # what marks a text model's dir


@dataclass
class ImageSource:
    model: torch.nn.Module  # (batch, 3, crop, crop) float32 -> (batch, dim), in eval mode
    dim: int
    preprocessing: ImagePreprocessing
    record: dict[str, Any]  # the manifest's `source` section


def read_image_source(source: str | Path, *, weights: str | Path | None = None, random_init: bool = False, seed: int = 0) -> ImageSource:
    name = str(source)
    if name in ARCHITECTURES:
        return _torchvision_source(name, weights, random_init, seed)
    if name == "default":
        raise ExportError("SOURCE default: 'default' is the bundled text model; export it with `embedrt export text default`, or give a ResNet.")
    path = Path(source)
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            raise ExportError(f"SOURCE {path}: an embedrt export dir already (it has {MANIFEST_NAME}); export from the PyTorch checkpoint it came from.")
        if weights is not None or random_init:
            raise ExportError(f"SOURCE {path}: a model dir carries its own weights; drop --weights/--random-init.")
        return _hf_source(path)
    raise ExportError(
        f"SOURCE {source}: neither a ResNet architecture ({', '.join(ARCHITECTURES)}) nor a local "
        "Hugging Face ResNetModel dir."
    )


# -- torchvision architecture + weights file ---------------------------------------------------------
def _torchvision_source(arch: str, weights: str | Path | None, random_init: bool, seed: int) -> ImageSource:
    if weights is None and not random_init:
        raise ExportError(
            f"SOURCE {arch}: give --weights FILE (a state dict or checkpoint, .pth/.pt/.safetensors); "
            "or pass --random-init to export untrained weights (for tests and benchmarks only)."
        )
    if weights is not None and random_init:
        raise ExportError(f"SOURCE {arch}: --weights and --random-init exclude each other; choose one.")
    torch.manual_seed(seed)
    model = ResNetFeatures(arch)
    record: dict[str, Any] = {"kind": "torchvision", "architecture": arch, "random_init": random_init}
    if random_init:
        record["seed"] = seed
    else:
        path = Path(weights)  # type: ignore[arg-type]
        _load_weights(model, arch, path)
        record.update(weights=str(path.absolute()), fingerprint=fingerprint([path]))
    return ImageSource(model.eval(), model.dim, IMAGENET, record)


def _load_weights(model: ResNetFeatures, arch: str, path: Path) -> None:
    state = {k: v for k, v in _read_state_dict(path).items() if not k.startswith("fc.")}  # the head is removed
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(k for k in set(state) & set(own) if state[k].shape != own[k].shape)
    if missing or unexpected or reshaped:
        guess = guess_architecture(set(state))
        hint = f"; its keys look like {guess}: `embedrt export image {guess} --weights {path}`" if guess and guess != arch else ""
        raise ExportError(
            f"--weights {path}: not a torchvision {arch} state dict (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"other shapes {reshaped[:3]}){hint}."
        )
    model.load_state_dict(state, strict=False)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ExportError(f"--weights {path}: no such file.")
    if path.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ExportError(f"--weights {path}: expected a {'/'.join(WEIGHT_SUFFIXES)} file.")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))
        else:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ExportError(
            f"--weights {path}: holds pickled Python objects besides tensors (a whole model?), which are refused "
            "for safety; save model.state_dict() instead."
        ) from None
    except Exception as exc:  # torch and safetensors raise many types for a damaged file
        raise ExportError(f"--weights {path}: cannot be read as a state dict ({type(exc).__name__}: {str(exc)[:200]}).") from exc
    for key in CHECKPOINT_KEYS:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"--weights {path}: holds no state dict (tensors by name), nor one under {', '.join(CHECKPOINT_KEYS)}.")
    return {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel / DDP checkpoints


# -- Hugging Face ResNetModel dir ----------------------------------------------------------------------
class _HFPooled(torch.nn.Module):
    """transformers' ResNetModel -> its pooled output, flattened to (batch, dim)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.model(pixel_values=pixel_values).pooler_output, 1)


def _hf_source(path: Path) -> ImageSource:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ExportError(f"SOURCE {path}: no config.json; this is not a Hugging Face model dir.")
    config = _read_json(config_file)
    if config.get("model_type") != "resnet":
        text = "vocab_size" in config or any((path / f).is_file() for f in TOKENIZER_FILES)
        hint = f"; it is a text model (it has a vocabulary): `embedrt export text {path}`" if text else ""
        raise ExportError(f"SOURCE {path}: model_type {config.get('model_type')!r}; image export supports HF 'resnet' (ResNetModel) dirs{hint}.")
    from transformers import ResNetModel

    try:
        model = ResNetModel.from_pretrained(str(path))
    except Exception as exc:
        raise ExportError(f"SOURCE {path}: transformers cannot load it as a ResNetModel ({exc}).") from exc
    prep_file = path / "preprocessor_config.json"
    preprocessing = preprocessing_from_hf(_read_json(prep_file), prep_file) if prep_file.is_file() else IMAGENET
    weight_files = [path / f for f in HF_WEIGHT_FILES if (path / f).is_file()]
    record = {
        "kind": "transformers",
        "path": str(path.absolute()),
        "model_type": "resnet",
        "architectures": config.get("architectures", []),
        "random_init": False,
        "preprocessing_from": prep_file.name if prep_file.is_file() else "torchvision ImageNet defaults",
        "fingerprint": fingerprint([config_file] + weight_files),
    }
    return ImageSource(_HFPooled(model).eval(), int(model.config.hidden_sizes[-1]), preprocessing, record)


def preprocessing_from_hf(cfg: dict[str, Any], where: Path) -> ImagePreprocessing:
    """An HF image processor config as resize-shorter-side + centre crop (the only pipeline the runtime runs)."""
    size = cfg.get("size") or {}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if "shortest_edge" not in size:
        raise ExportError(f"{where}: size {size} resizes to a fixed shape; embedrt supports resize-shorter-side + centre crop only.")
    if cfg.get("do_resize") is False or cfg.get("do_normalize") is False:
        raise ExportError(f"{where}: do_resize/do_normalize false is not supported.")
    shortest = int(size["shortest_edge"])
    if "crop_pct" in cfg:  # ConvNextImageProcessor (what HF ResNet checkpoints use)
        if shortest >= 384:
            raise ExportError(f"{where}: shortest_edge {shortest} >= 384 warps without cropping; not supported.")
        resize, crop = int(shortest / float(cfg["crop_pct"])), shortest
    elif cfg.get("do_center_crop") and cfg.get("crop_size"):
        crop_size = cfg["crop_size"]
        crop = int(crop_size if isinstance(crop_size, int) else crop_size["height"])
        if not isinstance(crop_size, int) and crop_size.get("width", crop) != crop:
            raise ExportError(f"{where}: crop_size {crop_size} is not square; not supported.")
        resize = shortest
    else:
        resize = crop = shortest
    resample = cfg.get("resample", 2)
    if resample not in HF_RESAMPLE:
        raise ExportError(f"{where}: resample {resample!r} is not a PIL filter code (0-5).")
    return ImagePreprocessing(
        resize=resize,
        crop=crop,
        mean=tuple(float(x) for x in cfg.get("image_mean", IMAGENET.mean)),  # type: ignore[arg-type]
        std=tuple(float(x) for x in cfg.get("image_std", IMAGENET.std)),  # type: ignore[arg-type]
        interpolation=HF_RESAMPLE[resample],
        rescale_factor=float(cfg.get("rescale_factor", 1 / 255)),
    )

