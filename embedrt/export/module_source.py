"""Where `embedrt export module` gets its module and its input specs: a factory `pkg.mod:fn`, a weights file, an inputs JSON."""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from embedrt.errors import ExportError
from embedrt.manifest import file_sha256


@dataclass(frozen=True)
class ModuleSource:
    module: torch.nn.Module
    record: dict[str, Any]  # the manifest's source: factory, weights path and sha256


@dataclass(frozen=True)
class InputsFile:
    """inputs.json: {"inputs": [FeatureColumn fields...], "example": {column: values}, "output": KEY} (all but inputs optional)."""

    columns: list[dict[str, Any]] | None
    example: dict[str, Any] | None
    output: str | None


def load_module(factory: str, weights: str | os.PathLike | None = None) -> ModuleSource:
    """Call `pkg.module:function` (no arguments) for the module, then load `weights` (a state dict, or a dict holding one)."""
    target, _, name = factory.partition(":")
    if not target or not name:
        raise ExportError(f"FACTORY {factory!r}: give it as package.module:function, e.g. two_tower.model:build_user_tower.")
    try:
        fn = getattr(importlib.import_module(target), name)
    except (ImportError, AttributeError) as exc:
        raise ExportError(f"FACTORY {factory!r}: cannot import it ({exc}); is its package on PYTHONPATH?") from exc
    module = fn()
    if not isinstance(module, torch.nn.Module):
        raise ExportError(f"FACTORY {factory!r} returned a {type(module).__name__}, not a torch.nn.Module.")
    record: dict[str, Any] = {"factory": factory, "random_init": weights is None}
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise ExportError(f"--weights {path}: no such file.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises pickle, zip and runtime errors alike
            raise ExportError(f"--weights {path}: not a PyTorch state dict torch.load can read with weights_only ({exc}).") from exc
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        try:
            module.load_state_dict(state)
        except (RuntimeError, TypeError) as exc:
            raise ExportError(f"--weights {path}: does not fit {factory} ({str(exc).splitlines()[0]}).") from exc
        record.update(weights=str(path.absolute()), fingerprint=file_sha256(path))
    return ModuleSource(module.eval(), record)


def read_inputs_file(path: str | os.PathLike) -> InputsFile:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ExportError(f"--inputs {path}: unreadable JSON ({exc}).") from exc
    if isinstance(data, list):
        data = {"inputs": data}
    if not isinstance(data, dict) or not isinstance(data.get("inputs", []), list):
        raise ExportError(f"--inputs {path}: expected {{\"inputs\": [{{\"name\": ..., \"kind\": \"id\"|\"id_list\"|\"float\", ...}}], \"example\": {{...}}}}.")
    unknown = set(data) - {"inputs", "example", "output"}
    if unknown:
        raise ExportError(f"--inputs {path}: unknown keys {sorted(unknown)}; it holds inputs, example and output.")
    return InputsFile(data.get("inputs"), data.get("example"), data.get("output"))
