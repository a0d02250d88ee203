"""TritonEmbedder: the local embedders' interface, served by Triton. A service switches by changing one line.

Two ways to reach the model `NAME` of a repository built by `embedrt triton build`:
- `TritonEmbedder(url, NAME)`: texts go to the server as strings (the ensemble tokenises them),
  images as their encoded bytes (the ensemble decodes and preprocesses them);
- `TritonEmbedder(url, NAME, path=EXPORT_DIR)`: texts (or images) are prepared here, with the
  same batching and pooling as in-process, and NAME_encoder runs the graph (embed_tokens works).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from embedrt.errors import InputError, TritonError
from embedrt.manifest import read_manifest
from embedrt.runtime.batching import iter_chunks, restore_order
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.text.tokenization import account_truncation, check_texts
from embedrt.triton.backend import TritonBackend
from embedrt.triton.configs import IMAGE_INPUT, IMAGE_OUTPUT, SENTENCE_OUTPUT, TEXT_INPUT, TRUNCATED_OUTPUT

INPUTS_PER_REQUEST = 64  # texts or images per request to an ensemble: larger requests pad more and batch less on the server


class TritonEmbedder:
    """Embeddings from a model on a Triton server: `embed`, `embed_tokens` (with path=), `dim`, `close`."""

    def __init__(
        self,
        url: str,
        name: str,
        protocol: str = "http",
        *,
        path: str | os.PathLike | None = None,
        timeout_s: float = 60.0,
        retries: int = 3,
        truncate: bool = True,
        **embedder_options: Any,
    ) -> None:
        self.url, self.name, self.protocol = url, name, protocol
        self.truncate = truncate
        self.truncated_total = 0
        self.local = None
        if path is not None:
            manifest = read_manifest(path)
            backend = TritonBackend(url, f"{name}_encoder", protocol, timeout_s=timeout_s, retries=retries)
            _check_same_model(backend, manifest.model_file.get("sha256", ""), path)
            if manifest.modality == "text":
                from embedrt.runtime.text.embedder import TextEmbedder

                self.local = TextEmbedder(path, backend=backend, truncate=truncate, **embedder_options)
            elif manifest.modality == "features":
                from embedrt.runtime.features.embedder import FeatureEmbedder

                self.local = FeatureEmbedder(path, backend=backend, **embedder_options)
            else:
                from embedrt.runtime.image.embedder import ImageEmbedder

                self.local = ImageEmbedder(path, backend=backend, **embedder_options)
            self.backend = backend
        else:
            self.backend = TritonBackend(url, name, protocol, timeout_s=timeout_s, retries=retries)
            if self.backend.input_names not in ((TEXT_INPUT,), (IMAGE_INPUT,)):
                raise TritonError(f"model {name!r} on {url} takes {list(self.backend.input_names)}, not raw texts or images; pass path=EXPORT_DIR to prepare inputs here.")

    @property
    def dim(self) -> int:
        if self.local is not None:
            return self.local.dim
        output = next(o for o in self.backend.config["output"] if o["name"] in (SENTENCE_OUTPUT, IMAGE_OUTPUT))
        return int(output["dims"][-1])

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def __repr__(self) -> str:
        return f"TritonEmbedder({self.url!r}, {self.name!r}, protocol={self.protocol!r}, dim={self.dim})"

    def embed(self, inputs: Sequence[Any], **options: Any) -> np.ndarray:
        """float32 (len(inputs), dim) in the order of `inputs`, like TextEmbedder.embed / ImageEmbedder.embed."""
        if self.local is not None:
            return self.local.embed(inputs, **options)
        if self.backend.input_names == (IMAGE_INPUT,):
            return self._embed_images(inputs, **options)
        if options.get("long_text", "truncate") != "truncate" or options.keys() - {"truncate", "progress", "long_text"}:
            raise TritonError(
                f"embed({', '.join(f'{k}=...' for k in options if k not in ('truncate', 'progress'))}): model {self.name!r} takes "
                "strings and tokenises on the server, which cuts long texts at the model's length. To embed long texts as "
                f"windows (long_text='chunk') or pass other TextEmbedder options, create TritonEmbedder({self.url!r}, "
                f"{self.name!r}, path=EXPORT_DIR): texts are then tokenised here and the server runs the encoder."
            )
        return self._embed_strings(inputs, truncate=options.get("truncate"), progress=options.get("progress"))

    def embed_tokens(self, texts: Sequence[str], **options: Any) -> list[np.ndarray]:
        if self.local is None or not hasattr(self.local, "embed_tokens"):
            raise TritonError(
                f"embed_tokens needs token vectors from {self.name}_encoder: create TritonEmbedder({self.url!r}, {self.name!r}, path=EXPORT_DIR) "
                "so that texts are tokenised here."
            )
        return self.local.embed_tokens(texts, **options)

    def _embed_strings(self, texts: Sequence[str], *, truncate: bool | None, progress=None) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encoded = [_utf8(i, text) for i, text in enumerate(texts)]  # before any request: a bad text fails the call, not a part of it
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths together: less padding per request
        size = min(INPUTS_PER_REQUEST, self.backend.max_batch_size)
        batches, vectors, truncated = [], [], []
        for chunk in iter_chunks(order, size):
            strings = np.array([[encoded[i]] for i in chunk], dtype=object)
            out = self.backend.infer({TEXT_INPUT: strings}, [SENTENCE_OUTPUT, TRUNCATED_OUTPUT])
            batches.append(chunk)
            vectors.append(out[SENTENCE_OUTPUT].astype(np.float32, copy=False))
            truncated.extend(int(i) for i, cut in zip(chunk, out[TRUNCATED_OUTPUT].reshape(-1)) if cut)
            if progress is not None:
                progress(len(chunk))
        result = restore_order(batches, vectors, len(texts))
        check_finite(result, "texts")
        allowed = self.truncate if truncate is None else truncate
        self.truncated_total += account_truncation(sorted(truncated), len(texts), allowed=allowed, limit="max length (the server's tokenizer)")
        return result

    def _embed_images(self, images: Sequence[Any], *, progress=None) -> np.ndarray:
        """Paths or encoded bytes, sent as they are: the server decodes and preprocesses them."""
        if isinstance(images, (str, bytes, os.PathLike)) or not hasattr(images, "__len__"):
            raise InputError(f"images must be a list of paths or bytes, not a single {type(images).__name__}; wrap one image in a list.")
        data = [_image_bytes(i, item) for i, item in enumerate(images)]
        if not data:
            return np.zeros((0, self.dim), dtype=np.float32)
        size = min(INPUTS_PER_REQUEST, self.backend.max_batch_size)
        vectors = []
        for part in iter_chunks(data, size):
            chunk = np.array([[d] for d in part], dtype=object)
            vectors.append(self.backend.infer({IMAGE_INPUT: chunk}, [IMAGE_OUTPUT])[IMAGE_OUTPUT].astype(np.float32, copy=False))
            if progress is not None:
                progress(len(chunk))
        result = np.concatenate(vectors)
        check_finite(result, "images")
        return result

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "TritonEmbedder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _utf8(index: int, text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"texts[{index}] holds {text[exc.start:exc.end]!r} at character {exc.start}, a lone surrogate that is not valid text "
            "(often bytes decoded with errors='surrogateescape'); decode the input as UTF-8 (errors='replace') or drop it."
        ) from None


def _image_bytes(index: int, item: Any) -> bytes:
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    if isinstance(item, (str, os.PathLike)):
        try:
            return open(item, "rb").read()
        except OSError as exc:
            raise InputError(f"images[{index}] {item}: unreadable ({exc.strerror or exc}).") from None
    raise InputError(
        f"images[{index}] is a {type(item).__name__}; the server takes encoded images (paths or bytes). "
        "For PIL images or arrays pass path=EXPORT_DIR, which preprocesses them here."
    )


def _check_same_model(backend: TritonBackend, sha256: str, path: str | os.PathLike) -> None:
    """Inputs prepared for one export must not be run by another model's graph."""
    served = (backend.config.get("parameters") or {}).get("embedrt_model_sha256", {}).get("string_value")
    if served and sha256 and served != sha256:
        backend.close()
        raise TritonError(
            f"{backend.model!r} on {backend.url} serves another model than {path} (model.onnx sha256 {served[:12]}... vs {sha256[:12]}...); "
            "pass the export dir the repository was built from, or rebuild the repository."
        )
