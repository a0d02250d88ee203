"""ImageEmbedder: decode + preprocess (thread pool) -> fixed-size batches -> backend -> float32 (n, dim) in the caller's order."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import numpy as np

from embedrt.errors import EmbedrtError, InputError, ManifestError, require_count
from embedrt.manifest import ImagePreprocessing, Manifest, read_manifest
from embedrt.runtime.batching import iter_chunks
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.self_check import open_engine, self_check
from embedrt.runtime.image.preprocess import DEFAULT_MAX_PIXELS, ImageInput, check_preprocessing, describe, load_pixels
from embedrt.runtime.inputs import as_input_list, check_options
from embedrt.runtime.outputs import check_finite

IMAGE_INPUT = "pixel_values"
IMAGE_OUTPUT = "image_embedding"
DEFAULT_BATCH_SIZE = 32  # images per engine call: past ~16 the CPU throughput is flat, memory is not
PREFETCH_BATCHES = 2  # batches decoded ahead of the engine; bounds memory with huge images
ON_ERROR = ("raise", "skip")

Progress = Callable[[int], None]  # called with the number of inputs just finished


class ImageFailure(NamedTuple):
    index: int  # position in the caller's list
    input: str  # the path, or what kind of input it was
    reason: str


class PartialEmbeddings(NamedTuple):
    """What embed(..., on_error="skip") returns: the vectors of the images that worked, and why the others did not."""

    vectors: np.ndarray  # float32 (len(indices), dim)
    indices: np.ndarray  # int64: vectors[k] belongs to images[indices[k]]
    failures: list[ImageFailure]


class ImageEmbedder:
    """Image embeddings from an image export dir.

    `device` is "cpu", "cuda" or "tensorrt"; a provider ONNX Runtime did not activate is an error.
    `workers` threads decode and preprocess while the engine runs the previous batch.
    `max_pixels` (default 100,000,000) refuses a larger image, from its header, before decoding it.
    `verify` ("error", "warn", "off"): on load the files' hashes are checked and the export's reference
    images are embedded and held to the precision's gate (`self_check` keeps the report).
    Safe to call from several threads at once.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        *,
        max_batch_size: int | None = None,
        workers: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        session: dict[str, Any] | None = None,
        backend: Backend | None = None,
        verify: str = "error",
        **backend_options: Any,
    ) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        if self.manifest.modality != "image":
            raise ManifestError(f"{self.path}: a {self.manifest.modality} export; use TextEmbedder or embedrt.load().")
        assert self.manifest.image is not None
        check_preprocessing(self.manifest.image, str(self.path))
        backend = open_engine(
            self.path, self.manifest, device=device, max_batch_size=max_batch_size, session=session, backend=backend,
            verify=verify, options=backend_options,
        )
        self.backend = backend
        self.device = device
        self.batch_size = min(max_batch_size or DEFAULT_BATCH_SIZE, backend.max_batch_size)
        self.workers = workers or min(4, os.cpu_count() or 1)
        if self.batch_size < 1 or self.workers < 1:
            raise EmbedrtError(f"max_batch_size ({max_batch_size}) and workers ({workers}) must be >= 1.")
        require_count("max_pixels", max_pixels, "the most pixels an image may have")
        self.max_pixels = max_pixels
        self.self_check = self_check(self.path, self.manifest, lambda ref: self.embed(list(ref["images"])), verify)

    # -- what the embedder is ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def preprocessing(self) -> ImagePreprocessing:
        assert self.manifest.image is not None
        return self.manifest.image

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def __repr__(self) -> str:
        return f"ImageEmbedder({str(self.path)!r}, dim={self.dim}, providers={self.providers})"

    # -- the three stages ------------------------------------------------------------------------
    def preprocess(self, images: Sequence[ImageInput]) -> np.ndarray:
        """Stage 1 (CPU): float32 (n, 3, crop, crop), exactly what the engine is fed. Raises on the first bad image."""
        images = _check_sequence(images)
        if not images:
            crop = self.preprocessing.crop
            return np.zeros((0, 3, crop, crop), dtype=np.float32)
        return np.stack([self._pixels(i, item) for i, item in enumerate(images)])

    def _pixels(self, index: int, item: ImageInput) -> np.ndarray:
        try:
            return load_pixels(item, self.preprocessing, self.max_pixels)
        except InputError as exc:
            raise _named(index, item, exc) from None

    def _decoded_batches(self, images: Sequence[ImageInput], pool: ThreadPoolExecutor) -> Iterator[tuple[Sequence[int], list[Future]]]:
        """Batches of futures, submitted PREFETCH_BATCHES ahead of the one being consumed."""
        pending: deque[tuple[Sequence[int], list[Future]]] = deque()
        chunks = iter_chunks(range(len(images)), self.batch_size)
        for chunk in chunks:
            pending.append((chunk, [pool.submit(load_pixels, images[i], self.preprocessing, self.max_pixels) for i in chunk]))
            if len(pending) > PREFETCH_BATCHES:
                yield pending.popleft()
        while pending:
            yield pending.popleft()

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """Stage 2 (engine) and 3: the graph pools and, if the export says so, normalises."""
        out = self.backend.run({IMAGE_INPUT: pixels}, [IMAGE_OUTPUT])[IMAGE_OUTPUT]
        return out.astype(np.float32, copy=False)

    # -- public API --------------------------------------------------------------------------------
    def embed(self, images: Sequence[ImageInput], *, on_error: str = "raise", progress: Progress | None = None) -> np.ndarray | PartialEmbeddings:
        """float32 (len(images), dim), rows in the order of `images`.

        on_error="raise": the first bad image raises InputError naming its index and path.
        on_error="skip": returns PartialEmbeddings (vectors of the good images, their indices, the failures).
        """
        if not isinstance(on_error, str) or on_error not in ON_ERROR:
            raise EmbedrtError(f"on_error={on_error!r}: use 'raise' or 'skip'.")
        check_options(progress=progress)
        images = _check_sequence(images)
        n = len(images)
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        good = np.ones(n, dtype=bool)
        failures: list[ImageFailure] = []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="embedrt-image") as pool:
            batches = self._decoded_batches(images, pool)
            try:
                for chunk, futures in batches:
                    rows, kept = [], []
                    for i, future in zip(chunk, futures):
                        try:
                            rows.append(future.result())
                            kept.append(i)
                        except InputError as exc:
                            if on_error == "raise":
                                raise _named(i, images[i], exc) from None
                            good[i] = False
                            failures.append(ImageFailure(i, describe(images[i]), str(exc)))
                    if rows:
                        out = self._run(np.stack(rows))
                        check_finite(out, "images", indices=kept, label=lambda i: describe(images[i]))
                        vectors[kept] = out
                    if progress is not None:
                        progress(len(chunk))
            finally:
                batches.close()  # stop submitting; queued decodes of later batches are cancelled below
                pool.shutdown(wait=True, cancel_futures=True)
        if on_error == "raise":
            return vectors
        return PartialEmbeddings(vectors[good], np.flatnonzero(good), failures)


def _named(index: int, item: ImageInput, exc: InputError) -> InputError:
    """The error for the caller: which input (index and path) and why."""
    return InputError(f"images[{index}] {describe(item)}: {exc}")


def _check_sequence(images: Sequence[ImageInput]) -> list[ImageInput]:
    """The images as a new list (see embedrt.runtime.inputs: generators are materialised, dicts and sets refused)."""
    single = "wrap one image in a list" + (" (or pass list(array) for an array of images or paths)." if isinstance(images, np.ndarray) else ".")
    if isinstance(images, (str, bytes, bytearray, memoryview, os.PathLike, np.ndarray)) or type(images).__module__.startswith("PIL."):
        raise InputError(f"images must be a list (of paths, bytes, PIL images or arrays), not a single {type(images).__name__}; {single}")
    return as_input_list(images, "images", single)
