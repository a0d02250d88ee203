"""Where `embedrt export module` gets its module and its input specs: a factory `pkg.mod:fn`, a weights file, an inputs JSON."""

from __future__ import annotations

import importlib
import json
import os
import traceback
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
        imported = importlib.import_module(target)
    except SyntaxError as exc:
        raise ExportError(f"FACTORY {factory!r}: {exc.filename}:{exc.lineno}: a SyntaxError ({exc.msg}); fix the module file, then run the "
                          "command again.") from None
    except ModuleNotFoundError as exc:
        if exc.name is None or not (target == exc.name or target.startswith(exc.name + ".")):  # the module's own import failed
            raise _raised(factory, exc, "importing it", "fix the module (or install what it imports)") from None
        raise ExportError(f"FACTORY {factory!r}: cannot import it ({exc}); is its package on PYTHONPATH?") from exc
    except Exception as exc:  # the module's top-level code: any error is the user's to fix, and never a traceback
        raise _raised(factory, exc, "importing it", "fix the module") from None
    fn = getattr(imported, name, None)
    if not callable(fn):
        raise ExportError(f"FACTORY {factory!r}: {getattr(imported, '__file__', target)} has no function {name!r}; name one that returns "
                          "the torch.nn.Module.")
    try:
        module = fn()
    except Exception as exc:
        raise _raised(factory, exc, f"calling {name}()", "fix the factory (called with no arguments, it must return the torch.nn.Module)",
                      getattr(imported, "__file__", None)) from None
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


def _raised(factory: str, exc: BaseException, doing: str, fix: str, file: str | None = None) -> ExportError:
    """An error raised by the user's module as one line: its file, what raised what, where, and what to do."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<frozen")]
    if file is None:  # importing: the module's file is the innermost frame running module-level code
        file = next((f.filename for f in reversed(frames) if f.name == "<module>"), "?")
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    detail = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return ExportError(f"FACTORY {factory!r}: {file}: {doing} raised {detail}{where}; {fix}, then run the command again.")


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
