"""The manifest's schema: the type of every field (from the dataclasses) and the values each may take.

A manifest is checked against it on every read, so that an edited or damaged field is refused naming
the file and the field, instead of failing deep inside ONNX Runtime or returning wrong shapes.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Callable

from embedrt.errors import ManifestError

POOLINGS = ("mean", "cls", "max", "none")
PRECISIONS = ("fp32", "int8", "fp16", "bf16")
PROVIDERS = ("any", "cpu", "cuda", "tensorrt", "openvino")
DTYPES = ("int64", "int32", "float32", "float16", "uint8", "int8", "bool")
FEATURE_KINDS = ("id", "id_list", "float")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_types(obj: Any, path: str = "") -> None:
    """Every field of the dataclass `obj` (recursively) has the type its annotation says; raises ValueError naming it."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, name = getattr(obj, f.name), f"{path}{f.name}"
        if not _matches(value, hints[f.name]):
            raise ValueError(f"field {name!r} is {value!r} ({type(value).__name__}); expected {_describe(hints[f.name])}")
        if dataclasses.is_dataclass(value):
            check_types(value, f"{name}.")
        elif isinstance(value, tuple):
            for i, item in enumerate(value):
                if dataclasses.is_dataclass(item):
                    check_types(item, f"{name}[{i}].")


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
    if origin is dict:
        return isinstance(value, dict) and all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _describe(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def check_values(manifest: Any) -> None:
    """The values each field may take, and how fields agree with one another; raises ValueError naming the field."""
    m = manifest
    _require(m.dim >= 1, "dim", m.dim, "a positive number of dimensions")
    _require(m.pooling in POOLINGS, "pooling", m.pooling, f"one of {', '.join(POOLINGS)}")
    _require(m.precision in PRECISIONS, "precision", m.precision, f"one of {', '.join(PRECISIONS)}")
    _require(m.provider in PROVIDERS, "provider", m.provider, f"one of {', '.join(PROVIDERS)}")
    _require(7 <= m.opset <= 30, "opset", m.opset, "an ONNX opset from 7 to 30")
    _require(m.max_batch_size >= 1, "max_batch_size", m.max_batch_size, ">= 1")
    for side in ("inputs", "outputs"):
        specs = getattr(m, side)
        _require(len(specs) > 0, side, specs, "at least one tensor")
        names = [t.name for t in specs]
        _require(len(set(names)) == len(names) and all(names), side, names, "distinct, non-empty names")
        for i, t in enumerate(specs):
            _require(t.dtype in DTYPES, f"{side}[{i}].dtype", t.dtype, f"one of {', '.join(DTYPES)}")
    _check_file_record(m.model_file, "model_file")
    for name, digest in m.files.items():
        _require(_plain_name(name), "files", name, "a file name inside the export dir")
        _require(bool(_SHA256.fullmatch(digest)), f"files[{name!r}]", digest, "a sha256 hex digest")
    _SECTIONS[m.modality](m)


def _check_text(m: Any) -> None:
    t = m.text
    _require(m.pooling in ("mean", "cls", "max"), "pooling", m.pooling, "mean, cls or max for a text model")
    _require(t.vocab_size >= 1, "text.vocab_size", t.vocab_size, "the size of the model's embedding table (>= 1)")
    _require(0 <= t.pad_token_id < t.vocab_size, "text.pad_token_id", t.pad_token_id, f"an id from 0 to {t.vocab_size - 1}")
    _require(t.max_length >= 2, "text.max_length", t.max_length, "at least 2 tokens (the special tokens)")
    if t.max_positions:
        _require(t.max_length <= t.max_positions, "text.max_length", t.max_length, f"at most the model's {t.max_positions} positions")
    wanted = "sentence_embedding" if m.pooled_in_graph else "token_embeddings"
    _require(wanted in m.output_names, "outputs", list(m.output_names), f"an output named {wanted!r}")


def _check_image(m: Any) -> None:
    p = m.image
    _require(1 <= p.crop <= p.resize, "image.crop", p.crop, f"from 1 to the resize ({p.resize})")
    _require(len(p.mean) == 3 and len(p.std) == 3, "image.mean/std", (p.mean, p.std), "three values each")
    _require(all(s > 0 for s in p.std), "image.std", p.std, "positive values")
    _require(p.rescale_factor > 0, "image.rescale_factor", p.rescale_factor, "a positive number")


def _check_features(m: Any) -> None:
    f = m.features
    names = [c.name for c in f.columns]
    _require(len(names) > 0 and len(set(names)) == len(names), "features.columns", names, "at least one column, names distinct")
    for i, c in enumerate(f.columns):
        _require(c.kind in FEATURE_KINDS, f"features.columns[{i}].kind", c.kind, f"one of {', '.join(FEATURE_KINDS)}")
        _require(c.num_embeddings >= 0, f"features.columns[{i}].num_embeddings", c.num_embeddings, ">= 0")
    _require(f.output in m.output_names, "features.output", f.output, f"one of the outputs {list(m.output_names)}")


_SECTIONS: dict[str, Callable[[Any], None]] = {"text": _check_text, "image": _check_image, "features": _check_features}


def _check_file_record(record: dict[str, Any], field: str) -> None:
    _require(_plain_name(record.get("name")), f"{field}.name", record.get("name"), "a file name inside the export dir")
    size = record.get("bytes")
    _require(isinstance(size, int) and size > 0, f"{field}.bytes", size, "the file's size in bytes")
    digest = record.get("sha256")
    _require(isinstance(digest, str) and bool(_SHA256.fullmatch(digest)), f"{field}.sha256", digest, "a sha256 hex digest")


def _plain_name(name: Any) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and "/" not in name and "\\" not in name


def _require(ok: bool, field: str, value: Any, expected: str) -> None:
    if not ok:
        raise ValueError(f"field {field!r} is {value!r}; expected {expected}")


def validate(manifest: Any, where: str) -> None:
    """Types, then values: a ManifestError naming the file and the field, and what to do."""
    try:
        check_types(manifest)
        check_values(manifest)
    except ValueError as exc:
        raise ManifestError(f"{where}: {exc}. The manifest was edited or damaged; re-export the model.") from None
