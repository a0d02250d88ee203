"""Versions of the packages that shape an export, recorded in its manifest."""

from __future__ import annotations

from importlib import metadata

PACKAGES = ("embedrt", "torch", "torchvision", "transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "tokenizers", "numpy")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
