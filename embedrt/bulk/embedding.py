"""A chunk's values through an embedder, the row errors separated from the vectors: the runtime does the batching."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from embedrt.errors import InputError, OutputError


@dataclass
class ChunkVectors:
    vectors: np.ndarray  # float32 (len(values) - len(failures), dim), the values that worked, in order
    failures: list[tuple[int, str]] = field(default_factory=list)  # (position in the chunk's values, why)
    truncated: int = 0  # texts cut at the model's max length


Progress = Callable[[int], None]
EmbedValues = Callable[[Sequence[Any], Progress], ChunkVectors]  # values, a callback told of inputs as they finish


def text_embedding(embedder, **embed_options: Any) -> EmbedValues:
    """TextEmbedder.embed over a chunk; a chunk it refuses is retried a text at a time to find the rows at fault."""

    def embed(texts: Sequence[str], progress: Progress) -> ChunkVectors:
        before = embedder.truncated_total
        try:
            vectors = embedder.embed(list(texts), progress=progress, **embed_options)
            failures: list[tuple[int, str]] = []
        except (InputError, OutputError):
            vectors, failures = _one_at_a_time(embedder, texts, embed_options)
        return ChunkVectors(vectors, failures, embedder.truncated_total - before)

    return embed


def _one_at_a_time(embedder, texts: Sequence[str], embed_options: dict) -> tuple[np.ndarray, list[tuple[int, str]]]:
    rows, failures = [], []
    for i, text in enumerate(texts):
        try:
            rows.append(embedder.embed([text], **embed_options)[0])
        except (InputError, OutputError) as exc:
            failures.append((i, str(exc).replace("texts[0] ", "the text ")))
    vectors = np.stack(rows) if rows else np.zeros((0, embedder.dim), dtype=np.float32)
    return vectors, failures


def image_embedding(embedder) -> EmbedValues:
    """ImageEmbedder.embed with on_error='skip': a bad image never costs the rest of its chunk."""

    def embed(paths: Sequence[Any], progress: Progress) -> ChunkVectors:
        result = embedder.embed(list(paths), on_error="skip", progress=progress)
        return ChunkVectors(result.vectors, [(f.index, f.reason) for f in result.failures])

    return embed
