"""TextEmbedder: tokenise -> token-budget batches -> backend -> pool -> float32 (n, dim) in the caller's order."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from embedrt.errors import ManifestError, require_count
from embedrt.manifest import Manifest, read_manifest
from embedrt.runtime.batching import DEFAULT_MAX_BATCH_TOKENS, batch_costs, plan_batches, restore_order
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.lanes import lane_threads, open_lanes
from embedrt.runtime.engines.self_check import open_engine, open_single_thread, self_check
from embedrt.runtime.inputs import check_options
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.prefetch import prefetch
from embedrt.runtime.text.output_names import SENTENCE_OUTPUT, TOKEN_OUTPUT
from embedrt.runtime.text.pooling import l2_normalize, pool
from embedrt.runtime.text.tokenization import DEFAULT_MAX_CHARS, Encoded, account_truncation, check_texts, encode, load_tokenizer, pad_batch

Progress = Callable[[int], None]  # called with the number of inputs just finished
# Texts tokenised at once in a pipelined call: while the engine runs one wave's batches, the next wave is tokenised
# and padded. Batches are length-sorted within a wave; 1,024 mixed sentences make 4-5 batches of a GPU's budget.
PIPELINE_WAVE = 1024


class TextEmbedder:
    """Sentence and token embeddings from a text export dir.

    `device` is "cpu", "cuda" or "tensorrt"; a provider ONNX Runtime did not activate is an error.
    `max_chars` (default 1,000,000) refuses a longer text with an InputError naming it, whatever `truncate` says.
    `verify` ("error", "warn", "off"): on load the files' hashes are checked and the export's reference
    texts are embedded and held to the precision's gate (`self_check` keeps the report).
    `lanes` (CPU): batches run at once, one core each, on a second one-thread session (default: one per
    intra-op thread; 1 turns them off; see embedrt.runtime.engines.lanes).
    `pipeline` (default: on for "cuda" and "tensorrt"): tokenising and padding the next batches overlaps the
    engine running the current one, in a producer thread; batches run one at a time on the whole session. Off on a
    CPU by default, where both stages would share the same cores.
    `cuda_graphs` (default: on for "cuda"): a call with one text replays a CUDA graph over a padded length bucket
    (embedrt.runtime.engines.cuda_graphs, docs/gpu.md); False turns them off.
    Safe to call from several threads at once.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        *,
        max_batch_tokens: int | None = None,
        max_batch_size: int | None = None,
        truncate: bool = True,
        max_chars: int = DEFAULT_MAX_CHARS,
        session: dict[str, Any] | None = None,
        backend: Backend | None = None,
        verify: str = "error",
        lanes: int | None = None,
        pipeline: bool | None = None,
        **backend_options: Any,
    ) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        if self.manifest.modality != "text":
            raise ManifestError(f"{self.path}: a {self.manifest.modality} export; use ImageEmbedder or embedrt.load().")
        assert self.manifest.text is not None
        own_backend = backend is None
        backend = open_engine(
            self.path, self.manifest, device=device, max_batch_size=max_batch_size, session=session, backend=backend,
            verify=verify, options=backend_options,
        )
        self.lanes = open_lanes(
            backend, lambda: open_single_thread(self.path, self.manifest, max_batch_size=max_batch_size, session=session, options=backend_options),
            device=device, threads=lane_threads(session), own_backend=own_backend, lanes=lanes,
        )
        self.tokenizer = load_tokenizer(self.path, self.manifest.text)
        self.backend = backend
        self.device = device
        self.max_batch_tokens = max_batch_tokens or DEFAULT_MAX_BATCH_TOKENS[device]
        self.max_batch_size = min(max_batch_size or backend.max_batch_size, backend.max_batch_size)
        self.truncate = truncate
        self.pipeline = device != "cpu" if pipeline is None else bool(pipeline)
        require_count("max_chars", max_chars, "the most characters a text may have")
        self.max_chars = max_chars
        self._lock = threading.Lock()
        self.truncated_total = 0  # texts cut at max_length since this embedder was made
        self.self_check = self_check(self.path, self.manifest, lambda ref: self.embed([str(t) for t in ref["texts"]]), verify)

    # -- what the embedder is ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def max_length(self) -> int:
        assert self.manifest.text is not None
        return self.manifest.text.max_length

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def __repr__(self) -> str:
        return f"TextEmbedder({str(self.path)!r}, dim={self.dim}, providers={self.providers})"

    # -- the three stages ------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str], truncate: bool | None = None, *, offsets: bool = True) -> Encoded:
        """Stage 1 (CPU): ids for each text; over-long texts are cut and counted, or refused. `offsets`: each token's characters too."""
        check_options(truncate=truncate)
        texts = check_texts(texts, self.max_chars)
        return self._encode_checked(texts, truncate, offsets=offsets)

    def _encode_checked(self, texts: list[str], truncate: bool | None, *, offsets: bool = True, first: int = 0, total: int | None = None) -> Encoded:
        """Stage 1 on checked texts, `first` the index of texts[0] in the caller's list of `total`."""
        encoded = encode(self.tokenizer, texts, offsets=offsets)
        allowed = self.truncate if truncate is None else truncate
        truncated = [first + i for i in encoded.truncated]
        cut = account_truncation(truncated, total or len(texts), allowed=allowed, limit=f"{self.max_length} tokens")
        if cut:
            with self._lock:
                self.truncated_total += cut
        return encoded

    def _prepared_batches(self, texts: list[str], truncate: bool | None, input_names: Sequence[str]) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """Stages 1 and padding for a pipelined call: per wave of texts, its batches as (indices into `texts`, engine inputs)."""
        assert self.manifest.text is not None
        for first in range(0, len(texts), PIPELINE_WAVE):
            encoded = self._encode_checked(texts[first : first + PIPELINE_WAVE], truncate, offsets=False, first=first, total=len(texts))
            batches = plan_batches(encoded.lengths, max_batch_tokens=self.max_batch_tokens, max_batch_size=self.max_batch_size, padded=self.backend.is_padded)
            for idx in batches:
                yield first + idx, pad_batch(encoded, idx, input_names, self.manifest.text.pad_token_id)

    def _embed_pipelined(self, texts: list[str], truncate: bool | None, progress: Progress | None) -> np.ndarray:
        """Stages 1, 2 and 3 overlapped: the producer tokenises and pads while this thread runs the engine and pools."""
        engine = self.lanes.whole
        batches, results = [], []
        for idx, inputs in prefetch(self._prepared_batches(texts, truncate, engine.input_names)):
            batches.append(idx)
            results.append(self._sentence_vectors(self.run_engine(engine, inputs, [self.sentence_output])))
            if progress is not None:
                progress(len(idx))
        return restore_order(batches, results, len(texts))

    def _run_batches(self, encoded: Encoded, output: str, progress: Progress | None, post: Callable | None = None) -> tuple[list[np.ndarray], list]:
        """Stage 2 (engine): length-sorted batches under the token budget, on the lanes; `post` reduces each result as it comes."""
        lengths = encoded.lengths
        batches = plan_batches(
            lengths,
            max_batch_tokens=self.max_batch_tokens,
            max_batch_size=self.max_batch_size,
            padded=self.backend.is_padded,
        )
        assert self.manifest.text is not None
        pad_id = self.manifest.text.pad_token_id

        def run(engine: Backend, b: int) -> Any:
            out = self.run_engine(engine, pad_batch(encoded, batches[b], engine.input_names, pad_id), [output])
            return out if post is None else post(out)

        results: list = [None] * len(batches)
        for b, result in self.lanes.map(run, batch_costs(lengths, batches, padded=self.backend.is_padded)):
            results[b] = result
            if progress is not None:
                progress(len(batches[b]))
        return batches, results

    @property
    def sentence_output(self) -> str:
        """The graph output sentence vectors come from: pooled in the graph, or its token vectors pooled here."""
        return SENTENCE_OUTPUT if self.manifest.pooled_in_graph else TOKEN_OUTPUT

    @staticmethod
    def run_engine(engine: Backend, inputs: dict[str, np.ndarray], outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """Stage 2 on one padded batch: the engine's `outputs`, with the batch's attention mask that pooling needs."""
        out = engine.run(inputs, list(outputs))
        out["attention_mask"] = inputs["attention_mask"]
        return out

    def _sentence_vectors(self, result: dict[str, np.ndarray]) -> np.ndarray:
        """Stage 3 (CPU): pool where the graph did not, then normalise as the model's own vectors are."""
        if self.manifest.pooled_in_graph:
            return result[SENTENCE_OUTPUT].astype(np.float32, copy=False)
        vectors = pool(result[TOKEN_OUTPUT], result["attention_mask"], self.manifest.pooling)
        return l2_normalize(vectors) if self.manifest.normalize else vectors

    # -- public API --------------------------------------------------------------------------------
    def embed(
        self,
        texts: Sequence[str],
        *,
        truncate: bool | None = None,
        progress: Progress | None = None,
        long_text: str = "truncate",
        window: int | None = None,
        stride: int | None = None,
        return_windows: bool = False,
    ) -> Any:
        """float32 (len(texts), dim), rows in the order of `texts`.

        long_text="chunk" embeds texts longer than the model as overlapping token windows of `window`
        tokens, `stride` apart; return_windows adds each text's window vectors and character spans
        (see embedrt.runtime.text.chunking).
        """
        check_options(truncate=truncate, progress=progress)
        if long_text != "truncate" or return_windows or window is not None or stride is not None:
            from embedrt.runtime.text.chunking import embed_long

            return embed_long(self, texts, long_text=long_text, window=window, stride=stride, return_windows=return_windows, truncate=truncate, progress=progress)
        if self.pipeline and len(texts) > 1:  # one text has nothing to overlap: the hand-off cost 0.4 ms of a 0.8 ms call on an H200
            checked = check_texts(texts, self.max_chars)
            if not checked:
                return np.zeros((0, self.dim), dtype=np.float32)
            vectors = self._embed_pipelined(checked, truncate, progress)
            check_finite(vectors, "texts")
            return vectors
        encoded = self.tokenize(texts, truncate, offsets=False)
        n = len(encoded.ids)
        if n == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        batches, results = self._run_batches(encoded, self.sentence_output, progress, post=self._sentence_vectors)  # pooled as they come
        vectors = restore_order(batches, results, n)
        check_finite(vectors, "texts")
        return vectors

    def embed_tokens(self, texts: Sequence[str], *, truncate: bool | None = None) -> list[np.ndarray]:
        """One float32 (len_i, hidden) array per text: its tokens' vectors, special tokens included, padding cut."""
        encoded = self.tokenize(texts, truncate)
        if not encoded.ids:
            return []
        batches, results = self._run_batches(encoded, TOKEN_OUTPUT, None)
        per_text: list[np.ndarray] = [np.empty(0)] * len(encoded.ids)
        for idx, result in zip(batches, results):
            hidden = result[TOKEN_OUTPUT]
            for row, i in enumerate(idx):
                per_text[i] = np.ascontiguousarray(hidden[row, : len(encoded.ids[i])], dtype=np.float32)
                check_finite(per_text[i][None], "texts", offset=i)
        return per_text

