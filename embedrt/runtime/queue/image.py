"""The image queue: fixed-size batches across requests; vectors equal to ImageEmbedder.embed."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import numpy as np

from embedrt.runtime.batching import plan_batches
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.lanes import Lanes
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.queue.core import SENTENCE, EmbedFuture, RequestQueue


class ImageQueue(RequestQueue):
    """The queue of an ImageEmbedder: fixed-size batches across requests, vectors equal to embedder.embed."""

    def __init__(self, embedder, **options: Any) -> None:
        self.embedder = embedder
        super().__init__(_ImageEngine(embedder), **options)

    def submit(self, images: Sequence[Any]) -> EmbedFuture:
        """A future of float32 (len(images), dim); a bad image raises InputError here, naming its index."""
        start = time.perf_counter()
        pixels = self.embedder.preprocess(images)  # decoded in the caller's thread
        return self._enqueue(list(pixels), SENTENCE, time.perf_counter() - start)

    def embed(self, images: Sequence[Any]) -> np.ndarray:
        return self.submit(images).result()

    async def embed_async(self, images: Sequence[Any]) -> np.ndarray:
        return await asyncio.wrap_future(self.submit(images))


class _ImageEngine:
    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.round_inputs = embedder.batch_size
        self.lanes = Lanes(embedder.backend)  # one lane: the image embedder's own engine

    def cost(self, pixels: np.ndarray) -> int:
        return 1

    def plan(self, costs: Sequence[int]) -> list[np.ndarray]:
        size = self.embedder.batch_size  # images all cost the same: the budget is the batch size
        return plan_batches(costs, max_batch_tokens=size, max_batch_size=size, padded=False)

    def prepare(self, items: list[np.ndarray], wants: set[str]) -> dict[str, np.ndarray]:
        return {"pixels": np.stack(items)}

    def run(self, inputs: dict[str, np.ndarray], wants: set[str], engine: Backend) -> dict[str, np.ndarray]:
        return {"vectors": self.embedder._run(inputs["pixels"])}  # engine is embedder.backend, its only lane

    def rows(self, out: dict[str, np.ndarray], items: list[np.ndarray], wants: list[str]) -> list[np.ndarray]:
        return list(out["vectors"])

    def collect(self, results: list[np.ndarray], want: str) -> np.ndarray:
        if not results:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        vectors = np.stack(results)
        check_finite(vectors, "images")
        return vectors
