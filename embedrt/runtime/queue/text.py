"""The text queue: token-budget batches across requests; vectors equal to TextEmbedder.embed, or token vectors."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Sequence

import numpy as np

from embedrt.errors import EmbedrtError, InputError
from embedrt.runtime.batching import plan_batches
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.queue.core import SENTENCE, TOKENS, EmbedFuture, RequestQueue
from embedrt.runtime.text.output_names import TOKEN_OUTPUT
from embedrt.runtime.text.tokenization import Encoded, account_truncation, pad_batch


class TextQueue(RequestQueue):
    """The queue of a TextEmbedder: token-budget batches across requests, vectors equal to embedder.embed."""

    def __init__(self, embedder, **options: Any) -> None:
        self.embedder = embedder
        super().__init__(_TextEngine(embedder), **options)

    def submit(self, texts: Sequence[str], *, truncate: bool | None = None, output: str = SENTENCE) -> EmbedFuture:
        """A future of float32 (len(texts), dim), or with output="tokens" a list of (len_i, hidden) arrays.

        Bad input (a non-string, an over-long text with truncate=False) raises here, in the caller's thread.
        """
        _check_output(output)
        start = time.perf_counter()
        encoded = self.embedder.tokenize(texts, truncate)  # stage 1 in the caller's thread: overlaps the engine
        return self._enqueue(list(zip(encoded.ids, encoded.type_ids)), output, time.perf_counter() - start)

    def submit_token_ids(self, ids: Sequence[Sequence[int]], *, truncate: bool | None = None, output: str = SENTENCE) -> EmbedFuture:
        """As submit, for inputs already tokenised by the model's own tokenizer (special tokens included)."""
        _check_output(output)
        start = time.perf_counter()
        rows = _check_ids(self.embedder, ids, truncate)
        return self._enqueue(rows, output, time.perf_counter() - start)

    def embed(self, texts: Sequence[str], **options: Any) -> Any:
        return self.submit(texts, **options).result()

    async def embed_async(self, texts: Sequence[str], **options: Any) -> Any:
        return await asyncio.wrap_future(self.submit(texts, **options))


class _TextEngine:
    def __init__(self, embedder) -> None:
        self.embedder = embedder
        self.sentence_output = embedder.sentence_output
        self.token_output = TOKEN_OUTPUT
        self.round_inputs = embedder.max_batch_size  # no need to wait once a full batch is pending
        self.lanes = embedder.lanes

    def cost(self, item: tuple[np.ndarray, np.ndarray]) -> int:
        return len(item[0])

    def plan(self, costs: Sequence[int]) -> list[np.ndarray]:
        e = self.embedder
        return plan_batches(costs, max_batch_tokens=e.max_batch_tokens, max_batch_size=e.max_batch_size, padded=e.backend.is_padded)

    def prepare(self, items: list[tuple[np.ndarray, np.ndarray]], wants: set[str]) -> dict[str, np.ndarray]:
        encoded = Encoded(ids=[ids for ids, _ in items], type_ids=[types for _, types in items], offsets=[], truncated=[])
        return pad_batch(encoded, np.arange(len(items)), self.embedder.backend.input_names, self.embedder.manifest.text.pad_token_id)

    def run(self, inputs: dict[str, np.ndarray], wants: set[str], engine: Backend) -> dict[str, np.ndarray]:
        names = sorted({self.sentence_output if w == SENTENCE else self.token_output for w in wants})
        return self.embedder.run_engine(engine, inputs, names)

    def rows(self, out: dict[str, np.ndarray], items: list[tuple[np.ndarray, np.ndarray]], wants: list[str]) -> list[np.ndarray]:
        vectors = self.embedder._sentence_vectors(out) if SENTENCE in wants else None  # stage 3, as embed() pools
        rows = []
        for r, ((ids, _), want) in enumerate(zip(items, wants)):
            if want == SENTENCE:
                rows.append(vectors[r])
            else:
                rows.append(np.ascontiguousarray(out[self.token_output][r, : len(ids)], dtype=np.float32))
        return rows

    def collect(self, results: list[np.ndarray], want: str) -> Any:
        if want == TOKENS:
            for i, tokens in enumerate(results):
                check_finite(tokens[None], "texts", offset=i)
            return results
        if not results:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        vectors = np.stack(results)
        check_finite(vectors, "texts")
        return vectors



def _check_output(output: str) -> None:
    if output not in (SENTENCE, TOKENS):
        raise EmbedrtError(f"output={output!r}: use {SENTENCE!r} (one vector per text) or {TOKENS!r} (one vector per token).")


def _check_ids(embedder, ids: Sequence[Sequence[int]], truncate: bool | None) -> list[np.ndarray]:
    """Token id lists as int64 arrays: ids in the vocabulary, lengths cut at max_length or refused."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
        raise InputError("token ids must be a list of lists of ints, one list per input.")
    vocab = embedder.manifest.text.vocab_size or embedder.tokenizer.get_vocab_size(with_added_tokens=True)
    rows, cut = [], []
    for i, row in enumerate(ids):
        if isinstance(row, (str, bytes)) or not isinstance(row, Sequence) or not row:
            raise InputError(f"input[{i}] must be a non-empty list of token ids.")
        if not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab for t in row):
            raise InputError(f"input[{i}] holds a token id that is not an int in [0, {vocab}); use the model's own tokenizer.")
        if len(row) > embedder.max_length:
            cut.append(i)
            row = row[: embedder.max_length]
        ids_row = np.asarray(row, dtype=np.int64)
        rows.append((ids_row, np.zeros_like(ids_row)))
    allowed = embedder.truncate if truncate is None else truncate
    account_truncation(cut, len(rows), allowed=allowed, limit=f"{embedder.max_length} tokens")
    return rows
