"""Export dirs -> a Triton model repository (`embedrt triton build`).

The repository appears whole or not at all (it is staged like an export dir). Model names are
listed in embedrt.triton.configs; python-backend sources come from the top-level triton_models/
(installed from a wheel under PREFIX/share/embedrt/triton_models/).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import site
import sys
from pathlib import Path
from typing import Sequence

from embedrt.errors import EmbedrtError, ManifestError
from embedrt.export.staging import staged_dir
from embedrt.manifest import MANIFEST_NAME, Manifest, check_model_file, read_manifest
from embedrt.runtime.text.tokenization import TOKENIZER_NAME
from embedrt.triton import configs
from embedrt.triton.configs import ServingOptions
from embedrt.triton.pbtxt import render

PYTHON_MODELS = ("encoder", "image_preprocess", "text_pooling", "text_tokenizer")  # the sources in triton_models/
PLAN_NAME = "model.plan"
VERSION = "1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def build_repository(
    export_dirs: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    options: ServingOptions = ServingOptions(),
    *,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model repository for `export_dirs` under `out`; returns `out`. `name` needs exactly one dir."""
    dirs = [Path(d) for d in export_dirs]
    if not dirs:
        raise EmbedrtError("give at least one export dir to build a repository from.")
    if name is not None and len(dirs) > 1:
        raise EmbedrtError(f"--name {name!r} names one model, but {len(dirs)} export dirs were given; build them one at a time or drop --name.")
    models = [(name or d.resolve().name, d, read_manifest(d)) for d in dirs]
    names = [m[0] for m in models]
    for model_name in names:
        if not _NAME.match(model_name):
            raise EmbedrtError(f"model name {model_name!r}: use letters, digits, '_', '.', '-' (pass --name NAME).")
    if len(set(names)) != len(names):
        raise EmbedrtError(f"two export dirs share the model name {sorted(n for n in names if names.count(n) > 1)[0]!r}; rename one dir.")
    for (_, export_dir, manifest) in models:
        if manifest.provider == "openvino":  # Triton's backends here run ONNX Runtime: they would compute it in fp32, slower
            raise EmbedrtError(f"{export_dir}: a bf16 engine, which OpenVINO runs in-process; a Triton repository serves ONNX Runtime "
                               "engines. Build it from the fp32 or int8 export (`embedrt optimize` makes them).")
    model_sources()  # before anything is written: a wheel install without them fails here, naming where it looked
    with staged_dir(out, kind="triton", overwrite=overwrite, sources=dirs, option="--repository") as tmp:
        for model_name, export_dir, manifest in models:
            if manifest.modality == "text":
                _text_models(tmp, model_name, export_dir, manifest, options)
            elif manifest.modality == "features":  # rows are checked by the client (TritonEmbedder path=): the encoder alone
                _encoder(tmp, model_name, export_dir, manifest, options)
            else:
                _image_models(tmp, model_name, export_dir, manifest, options)
    return Path(out)


@functools.lru_cache(maxsize=1)  # looked up once per process, not once per model written
def model_sources() -> Path:
    """The python-backend model sources: triton_models/ in a source checkout (or an editable install),
    else PREFIX/share/embedrt/triton_models/, where a wheel installs them (pyproject's data-files)."""
    checkout = Path(__file__).resolve().parents[2] / "triton_models"
    candidates = [checkout] + [Path(prefix) / "share" / "embedrt" / "triton_models" for prefix in dict.fromkeys((sys.prefix, site.getuserbase()))]
    for candidate in candidates:
        if all((candidate / name / "model.py").is_file() for name in PYTHON_MODELS):
            return candidate
    raise EmbedrtError(
        f"the Triton python-backend model sources ({', '.join(PYTHON_MODELS)}) are in none of "
        f"{', '.join(str(c) for c in candidates)}; reinstall embedrt (pip install --force-reinstall embedrt) or run from a source checkout."
    )


def _write_model(repo: Path, config: dict, source: str | None = None) -> Path:
    """REPO/NAME/config.pbtxt and REPO/NAME/1/ (with model.py from model_sources()/SOURCE)."""
    version_dir = repo / config["name"] / VERSION
    version_dir.mkdir(parents=True)
    (repo / config["name"] / "config.pbtxt").write_text(render(config), encoding="utf-8")
    if source is not None:
        shutil.copyfile(model_sources() / source / "model.py", version_dir / "model.py")
    return version_dir


def _encoder(repo: Path, model_name: str, export_dir: Path, manifest: Manifest, options: ServingOptions) -> None:
    config = configs.encoder_config(f"{model_name}_encoder", manifest, options)
    if options.backend == "tensorrt":
        plan = export_dir / PLAN_NAME
        if not plan.is_file():
            raise ManifestError(
                f"{plan}: missing; --backend tensorrt serves a TensorRT engine built for the serving GPU. "
                "Build one there (trtexec --onnx=model.onnx --saveEngine=model.plan, or the precision tools), "
                "or use --backend onnxruntime with the TensorRT accelerator."
            )
        version_dir = _write_model(repo, config)
        shutil.copyfile(plan, version_dir / PLAN_NAME)
        return
    version_dir = _write_model(repo, config, "encoder" if options.backend == "python" else None)
    shutil.copyfile(check_model_file(export_dir, manifest), version_dir / "model.onnx")


def _text_models(repo: Path, model_name: str, export_dir: Path, manifest: Manifest, options: ServingOptions) -> None:
    _encoder(repo, model_name, export_dir, manifest, options)
    version_dir = _write_model(repo, configs.tokenizer_config(f"{model_name}_tokenizer", manifest, options), "text_tokenizer")
    for file_name in (TOKENIZER_NAME, MANIFEST_NAME):
        shutil.copyfile(export_dir / file_name, version_dir / file_name)
    if not manifest.pooled_in_graph:
        _write_model(repo, configs.pooling_config(f"{model_name}_pooling", manifest, options), "text_pooling")
    _write_model(repo, configs.text_ensemble_config(model_name, manifest, options))


def _image_models(repo: Path, model_name: str, export_dir: Path, manifest: Manifest, options: ServingOptions) -> None:
    _encoder(repo, model_name, export_dir, manifest, options)
    version_dir = _write_model(repo, configs.image_preprocess_config(f"{model_name}_preprocess", manifest, options), "image_preprocess")
    shutil.copyfile(export_dir / MANIFEST_NAME, version_dir / MANIFEST_NAME)
    _write_model(repo, configs.image_ensemble_config(model_name, manifest, options))
