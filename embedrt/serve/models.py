"""The served models: each an embedder and its queue, loaded and warmed up before the server says it is ready."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedrt.default_model import DEFAULT, resolve_model
from embedrt.errors import EmbedrtError
from embedrt.manifest import read_manifest
from embedrt.runtime.queue import RequestQueue, make_queue
from embedrt.runtime.text.pooling import l2_normalize, pool
from embedrt.runtime.text.tokenization import encode
from embedrt.sample_text import sample_sentences

WARM_UP_TEXTS = 32  # mixed lengths: the engine sees short and long shapes before the first request
WARM_UP_IMAGES = 2
# ONNX Runtime's threads do not spin between runs here: the server's event loop and its clients need the cores
# the moment a batch ends (served p50 at one caller 0.4-0.5 ms lower, all-MiniLM-L6-v2, Xeon, 2 cores).
SERVE_SESSION = {"spinning": False}


@dataclass
class ServedModel:
    name: str
    path: Path
    embedder: Any  # TextEmbedder | ImageEmbedder
    queue: RequestQueue

    @property
    def modality(self) -> str:
        return self.embedder.manifest.modality

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def info(self) -> dict[str, Any]:
        manifest = self.embedder.manifest
        info = {"name": self.name, "path": str(self.path), "modality": self.modality, "dim": self.dim,
                "providers": self.embedder.providers, "precision": manifest.precision, "pooling": manifest.pooling,
                "normalize": manifest.normalize, "max_batch_size": manifest.max_batch_size}
        if manifest.text is not None:
            info["max_length"] = manifest.text.max_length
            info["max_batch_tokens"] = self.embedder.max_batch_tokens
            info["lanes"] = self.embedder.lanes.count
        return info

    def unnormalized(self, tokens: list[np.ndarray]) -> np.ndarray:
        """The model's pooled vectors before its L2 normalisation (TEI's normalize=false), from token vectors."""
        rows = [pool(t[None], np.ones((1, len(t)), dtype=np.int64), self.embedder.manifest.pooling)[0] for t in tokens]
        return np.stack(rows).astype(np.float32, copy=False)


def model_name(model: str) -> str:
    return DEFAULT if model == DEFAULT else Path(model).resolve().name


def load_model(model: str, name: str, *, device: str, queue_options: dict[str, Any], observer, max_batch_tokens: int | None = None,
               lanes: int | None = None) -> ServedModel:
    """Load, self-check and warm up an export; a provider that did not activate raises ProviderError here.

    `max_batch_tokens` and `lanes` are a text model's options; image and feature models ignore them.
    """
    import embedrt

    path = resolve_model(model)
    options: dict[str, Any] = {"session": dict(SERVE_SESSION)}
    if read_manifest(path).modality == "text":
        options |= {key: value for key, value in (("max_batch_tokens", max_batch_tokens), ("lanes", lanes)) if value is not None}
    embedder = embedrt.load(path, device=device, **options)
    warm_up(embedder)
    queue = make_queue(embedder, observer=observer, name=name, **queue_options)
    return ServedModel(name, path, embedder, queue)


def warm_up(embedder) -> None:
    if embedder.manifest.modality == "features":
        return  # its self-check on load ran the reference rows through the engine already
    if embedder.manifest.modality == "image":
        crop = embedder.preprocessing.crop
        embedder.embed([np.full((crop, crop, 3), 127, dtype=np.uint8)] * WARM_UP_IMAGES)
        return
    texts = sample_sentences(WARM_UP_TEXTS, min_words=1, max_words=120)
    too_long = set(encode(embedder.tokenizer, texts).truncated)  # a cut warm-up text would warn and count as a user's
    embedder.embed([text for i, text in enumerate(texts) if i not in too_long])


def resize(vectors: np.ndarray, dimensions: int | None, dim: int, *, normalize: bool) -> np.ndarray:
    """The leading `dimensions`, re-normalised; above the model's dim is the caller's error."""
    if dimensions is not None:
        if dimensions > dim:
            raise EmbedrtError(f"dimensions={dimensions} is more than the model's {dim}.")
        vectors = vectors[:, :dimensions]
    return l2_normalize(vectors) if normalize else np.ascontiguousarray(vectors)


def check_unique(names: list[str]) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise EmbedrtError(f"two models are served as {name!r}; give each a different --name.")
        if not name or name != name.strip():
            raise EmbedrtError(f"--name {name!r}: use a non-empty name without surrounding spaces.")
        seen.add(name)
