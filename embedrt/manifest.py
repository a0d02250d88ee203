"""The manifest (`embedrt.json`): the only contract between export and runtime.

It records everything the runtime needs and nothing it must guess. The runtime refuses a
manifest whose schema version it does not know, that breaks the schema (embedrt.manifest_schema),
or whose files do not match it (size on every read, sha256 on load: check_integrity).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedrt.atomic_file import atomic_write_text
from embedrt.errors import ManifestError

MANIFEST_NAME = "embedrt.json"
MODEL_NAME = "model.onnx"
SCHEMA_VERSION = 2  # 2: reference vectors, file hashes, the CPU of the gate, max_positions
MODALITIES = ("text", "image", "features")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "int64", "float32", ...
    shape: tuple[str | int, ...]  # symbolic axes are strings ("batch", "sequence")


@dataclass(frozen=True)
class TextPreprocessing:
    max_length: int  # tokens, special tokens included; longer inputs are truncated (and counted)
    pad_token_id: int = 0
    vocab_size: int = 0  # of the model's embedding table: a tokenizer with more ids does not fit
    max_positions: int = 0  # the model's position embeddings: max_length may not exceed them


@dataclass(frozen=True)
class ImagePreprocessing:
    resize: int  # shorter side, before the centre crop
    crop: int  # square crop fed to the model
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    channel_order: str = "RGB"
    interpolation: str = "bilinear"
    rescale_factor: float = 1 / 255


@dataclass(frozen=True)
class FeatureColumn:
    """One named input column of a feature model (a user or item tower): what a row holds, how it reaches the graph."""

    name: str  # the column, and the graph input it feeds
    kind: str  # "id": integer(s) of fixed shape a row; "id_list": a variable-length list of integers a row; "float"
    dtype: str  # numpy dtype of the graph input: "int64"/"int32" for ids, "float32" for floats
    shape: tuple[int, ...] = ()  # values a row: () one scalar, (k,) k of them (a ragged row is refused); id_list: ()
    num_embeddings: int = 0  # ids: valid values are 0 .. num_embeddings - 1, read from the table they index
    layout: str = ""  # id_list: "offsets" (flat NAME + NAME_offsets, as nn.EmbeddingBag takes) or "padded" (batch, longest)
    pad_id: int = 0  # id_list "padded": the value rows are padded with


@dataclass(frozen=True)
class FeaturesSection:
    columns: tuple[FeatureColumn, ...]
    output: str  # graph output holding the (batch, dim) vectors


@dataclass(frozen=True)
class Manifest:
    modality: str  # "text" | "image" | "features"
    dim: int  # length of the pooled embedding
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    pooling: str  # "mean" | "cls" | "max" | "none" (image: the graph pools)
    normalize: bool  # vectors are L2-normalised (in the graph if pooled_in_graph)
    pooled_in_graph: bool  # graph has the pooled output ("sentence_embedding" / "image_embedding")
    precision: str = "fp32"
    opset: int = 17
    provider: str = "any"  # execution provider the engine was built for: "any", "cuda", "tensorrt"
    text: TextPreprocessing | None = None
    image: ImagePreprocessing | None = None
    features: FeaturesSection | None = None
    source: dict[str, Any] = field(default_factory=dict)  # path, architecture, fingerprint, random_init
    versions: dict[str, str] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    optimizations: tuple[str, ...] = ()
    model_file: dict[str, Any] = field(default_factory=dict)  # name, bytes, sha256
    files: dict[str, str] = field(default_factory=dict)  # sha256 of every other file the runtime reads (tokenizer, reference)
    machine: dict[str, Any] = field(default_factory=dict)  # the CPU the parity gate was measured on (embedrt.runtime.engines.cpu)
    max_batch_size: int = 256
    schema_version: int = SCHEMA_VERSION

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = MANIFEST_NAME) -> "Manifest":
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{where}: schema_version {version!r} is not understood by this embedrt "
                f"(it reads version {SCHEMA_VERSION}); re-export the model with this version "
                "of embedrt or install the embedrt that wrote it."
            )
        try:
            fields = dict(data)
            fields["inputs"] = tuple(_tensor(t) for t in data["inputs"])
            fields["outputs"] = tuple(_tensor(t) for t in data["outputs"])
            fields["optimizations"] = tuple(data.get("optimizations", ()))
            if data.get("text") is not None:
                fields["text"] = TextPreprocessing(**data["text"])
            if data.get("image") is not None:
                img = dict(data["image"])
                img["mean"], img["std"] = tuple(img["mean"]), tuple(img["std"])
                fields["image"] = ImagePreprocessing(**img)
            if data.get("features") is not None:
                section = data["features"]
                columns = tuple(FeatureColumn(**{**c, "shape": tuple(c.get("shape", ()))}) for c in section["columns"])
                fields["features"] = FeaturesSection(columns=columns, output=section["output"])
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(fields) - known
            if unknown:
                raise ManifestError(f"{where}: unknown fields {sorted(unknown)}; it was written by another embedrt version.")
            manifest = cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"{where}: missing or malformed field ({exc}); the export dir is damaged, re-export it.") from exc
        if manifest.modality not in MODALITIES:
            raise ManifestError(f"{where}: field 'modality' is {manifest.modality!r}; expected one of {', '.join(MODALITIES)}. The manifest was edited or damaged; re-export the model.")
        if manifest.modality == "text" and manifest.text is None:
            raise ManifestError(f"{where}: a text manifest needs its 'text' preprocessing section.")
        if manifest.modality == "image" and manifest.image is None:
            raise ManifestError(f"{where}: an image manifest needs its 'image' preprocessing section.")
        if manifest.modality == "features" and manifest.features is None:
            raise ManifestError(f"{where}: a features manifest needs its 'features' section (the input columns).")
        from embedrt.manifest_schema import validate

        validate(manifest, where)
        return manifest


def _tensor(data: dict[str, Any]) -> TensorSpec:
    return TensorSpec(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))


def read_manifest(export_dir: str | os.PathLike) -> Manifest:
    """Read and check `embedrt.json` and the model file it describes; raise ManifestError naming the file."""
    export_dir = Path(export_dir)
    if not export_dir.is_dir():
        raise ManifestError(f"{export_dir}: no such export dir; create one with `embedrt export text|image SOURCE --out {export_dir}`.")
    path = export_dir / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path}: missing; {export_dir} is not a finished embedrt export (an export writes its manifest last). "
            "Re-export the model."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc}); the export dir is damaged, re-export it.") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: expected a JSON object, found {type(data).__name__}.")
    manifest = Manifest.from_dict(data, where=str(path))
    check_model_file(export_dir, manifest)
    return manifest


def check_model_file(export_dir: Path, manifest: Manifest) -> Path:
    """The model file exists and has the size the manifest recorded (catches a truncated copy)."""
    name = manifest.model_file.get("name", MODEL_NAME)
    model_path = export_dir / name
    if not model_path.is_file():
        raise ManifestError(f"{model_path}: missing; the export dir is incomplete, re-export the model.")
    expected = manifest.model_file.get("bytes")
    actual = model_path.stat().st_size
    if expected is not None and actual != expected:
        raise ManifestError(
            f"{model_path}: {actual} bytes but {MANIFEST_NAME} recorded {expected}; "
            "the file is truncated or was replaced. Re-export the model."
        )
    return model_path


def check_integrity(export_dir: Path, manifest: Manifest) -> None:
    """Every file the runtime reads has the sha256 the export recorded: weights changed in place at the
    same size, or a tokenizer or reference file swapped in, are refused (about 60 ms for a 90 MB model)."""
    expected = {manifest.model_file["name"]: manifest.model_file["sha256"], **manifest.files}
    for name, digest in expected.items():
        path = Path(export_dir) / name
        try:
            actual = file_sha256(path)
        except OSError as exc:
            raise ManifestError(f"{path}: unreadable ({exc}); the export dir is incomplete, re-export the model.") from exc
        if actual != digest:
            raise ManifestError(
                f"{path}: its sha256 {actual[:12]}... differs from the {digest[:12]}... that {MANIFEST_NAME} recorded; "
                "the file was changed or replaced after export. Re-export the model (or restore the file)."
            )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(export_dir: Path, manifest: Manifest) -> Path:
    return atomic_write_text(Path(export_dir) / MANIFEST_NAME, manifest.to_json())
