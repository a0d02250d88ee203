"""Long texts as overlapping token windows: where a document longer than the model is cut and put back together.

`TextEmbedder.embed(texts, long_text="chunk")` lands here. Each text longer than the model's
max length becomes windows of at most `window` tokens (special tokens included) whose starts are
`stride` content tokens apart, cut on word boundaries where a word fits in a window. All windows
of all texts go through the same token-budget batches; a document's vector is the mean of its
window vectors weighted by their token counts, normalised as the model's own vectors are.

Long texts are tokenised in pieces of about PIECE_CHARS characters cut at whitespace, so memory
stays bounded by the pieces and the ids (a few bytes a token), not by the tokenizer's per-token
objects for a whole book.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from tokenizers import Tokenizer

from embedrt.errors import InputError
from embedrt.runtime.batching import restore_order
from embedrt.runtime.outputs import check_finite
from embedrt.runtime.text.output_names import SENTENCE_OUTPUT, TOKEN_OUTPUT
from embedrt.runtime.text.pooling import l2_normalize
from embedrt.runtime.text.tokenization import Encoded, check_texts, cut_at_whitespace, encode

LONG_TEXT_MODES = ("truncate", "chunk")
PIECE_CHARS = 8192  # characters tokenised at once; a whitespace cut keeps every word whole
DEFAULT_OVERLAP = 4  # windows overlap by 1/DEFAULT_OVERLAP of their content by default


@dataclass
class Windows:
    """The windows one text was embedded as: their vectors, character spans [start, end) and token counts."""

    vectors: np.ndarray  # float32 (k, dim)
    spans: np.ndarray  # int64 (k, 2), character offsets into the text, as the tokenizer reports its tokens' (a byte-level BPE token's leading space falls outside)
    token_counts: np.ndarray  # int64 (k,), special tokens included: the weights of the mean


@dataclass
class _Plan:
    ids: list[np.ndarray]
    type_ids: list[np.ndarray]
    spans: list[tuple[int, int]]
    first_window: list[int]  # per text, index of its first window (windows of a text are contiguous)


class WindowTokenizer:
    """An untruncated copy of an embedder's tokenizer, and the special tokens its template adds around one text."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        probe = self.tokenizer.encode("a", add_special_tokens=True)
        special = probe.special_tokens_mask
        content = [i for i, s in enumerate(special) if not s]
        first, last = (content[0], content[-1]) if content else (len(special), len(special) - 1)
        self.prefix = np.asarray(probe.ids[:first], dtype=np.int64)
        self.suffix = np.asarray(probe.ids[last + 1 :], dtype=np.int64)
        self.prefix_types = np.asarray(probe.type_ids[:first], dtype=np.int64)
        self.suffix_types = np.asarray(probe.type_ids[last + 1 :], dtype=np.int64)
        self.content_type = int(probe.type_ids[first]) if content else 0

    @property
    def n_special(self) -> int:
        return len(self.prefix) + len(self.suffix)

    def content_tokens(self, text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, char offsets (n, 2), starts_word) of a text without special tokens, tokenised piece by piece."""
        pieces = list(_pieces(text))
        encodings = self.tokenizer.encode_batch([text[a:b] for a, b in pieces], add_special_tokens=False)
        ids, offsets, starts_word = [], [], []
        for (start, _), enc in zip(pieces, encodings):
            if not enc.ids:
                continue
            ids.append(np.asarray(enc.ids, dtype=np.int64))
            offsets.append(np.asarray(enc.offsets, dtype=np.int64).reshape(-1, 2) + start)
            words = np.asarray([-1 if w is None else w for w in enc.word_ids], dtype=np.int64)
            starts = np.ones(len(words), dtype=bool)  # a piece starts at whitespace: its first token starts a word
            starts[1:] = (words[1:] != words[:-1]) | (words[1:] < 0)
            starts_word.append(starts)
        if not ids:
            return np.zeros(0, np.int64), np.zeros((0, 2), np.int64), np.zeros(0, bool)
        return np.concatenate(ids), np.concatenate(offsets), np.concatenate(starts_word)


def _pieces(text: str):
    """[start, end) spans of about PIECE_CHARS characters, each ending just before whitespace where there is any."""
    start = 0
    while start < len(text):
        end = cut_at_whitespace(text, start, PIECE_CHARS)
        yield start, end
        start = end


def window_ranges(starts_word: np.ndarray, content: int, stride: int) -> list[tuple[int, int]]:
    """[start, end) token ranges covering all of `starts_word`, at most `content` long, cut at word starts where a word fits."""
    n = len(starts_word)
    word_starts = np.flatnonzero(starts_word)

    def snap_back(position: int, floor: int) -> int:
        """The last word start in (floor, position], or position itself when the word is longer than that."""
        k = int(np.searchsorted(word_starts, position, side="right")) - 1
        return int(word_starts[k]) if k >= 0 and word_starts[k] > floor else position

    ranges = []
    start = 0
    while True:
        end = min(start + content, n)
        if end < n:
            end = snap_back(end, start)
        ranges.append((start, end))
        if end >= n:
            return ranges
        start = snap_back(min(start + stride, end), start)


def _window_tokenizer(embedder) -> WindowTokenizer:
    # One per embedder, made on first use: copying a tokenizer costs milliseconds.
    cached = embedder.__dict__.get("_window_tokenizer")
    if cached is None:
        cached = embedder.__dict__.setdefault("_window_tokenizer", WindowTokenizer(embedder.tokenizer))
    return cached


def check_window(embedder, window: int | None, stride: int | None, n_special: int) -> tuple[int, int]:
    """(content tokens per window, stride), or an InputError naming the option."""
    window = embedder.max_length if window is None else _count("window", window)
    if not n_special < window <= embedder.max_length:
        raise InputError(f"window={window}: must be more than the {n_special} special token(s) and at most the model's max length {embedder.max_length}.")
    content = window - n_special
    stride = content - content // DEFAULT_OVERLAP if stride is None else _count("stride", stride)
    if not 1 <= stride <= content:
        raise InputError(f"stride={stride}: must be between 1 and the window's {content} content tokens (window {window} minus {n_special} special); a larger stride would skip text.")
    return content, stride


def _count(option: str, value) -> int:
    """A whole number of tokens, or an InputError naming the option."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"{option}={value!r}: give a whole number of tokens.")
    return int(value)


def _plan_truncated(embedder, texts: list[str], truncate: bool | None) -> _Plan:
    encoded = embedder.tokenize(texts, truncate)
    truncated = set(encoded.truncated)
    spans = []
    for i, text in enumerate(texts):
        end = max((e for _, e in encoded.offsets[i]), default=0) if i in truncated else len(text)
        spans.append((0, end))
    return _Plan(encoded.ids, encoded.type_ids, spans, list(range(len(texts))))


def _plan_chunked(embedder, texts: list[str], window: int | None, stride: int | None) -> _Plan:
    tok = _window_tokenizer(embedder)
    content, stride = check_window(embedder, window, stride, tok.n_special)
    short = [i for i, t in enumerate(texts) if len(t) <= PIECE_CHARS]
    whole = encode(embedder.tokenizer, [texts[i] for i in short])
    cut = set(whole.truncated)
    fits = {i: k for k, i in enumerate(short) if k not in cut and len(whole.ids[k]) <= content + tok.n_special}
    plan = _Plan([], [], [], [])
    for i, text in enumerate(texts):
        plan.first_window.append(len(plan.ids))
        if i in fits:  # what truncate mode would embed, token for token
            plan.ids.append(whole.ids[fits[i]])
            plan.type_ids.append(whole.type_ids[fits[i]])
            plan.spans.append((0, len(text)))
            continue
        ids, offsets, starts_word = tok.content_tokens(text)
        for a, b in window_ranges(starts_word, content, stride):
            plan.ids.append(np.concatenate([tok.prefix, ids[a:b], tok.suffix]))
            plan.type_ids.append(np.concatenate([tok.prefix_types, np.full(b - a, tok.content_type, np.int64), tok.suffix_types]))
            plan.spans.append((int(offsets[a, 0]), int(offsets[b - 1, 1])) if b > a else (0, len(text)))
    return plan


class _TextProgress:
    """Turns windows finished into texts finished, for callers counting texts."""

    def __init__(self, progress: Callable[[int], None], n_texts: int, n_windows: int) -> None:
        self.progress, self.scale, self.done, self.reported = progress, n_texts / n_windows, 0.0, 0

    def __call__(self, windows: int) -> None:
        self.done += windows * self.scale
        step = int(round(self.done)) - self.reported
        if step > 0:
            self.reported += step
            self.progress(step)


def embed_long(
    embedder,
    texts: Sequence[str],
    *,
    long_text: str = "chunk",
    window: int | None = None,
    stride: int | None = None,
    return_windows: bool = False,
    truncate: bool | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray | tuple[np.ndarray, list[Windows]]:
    """TextEmbedder.embed with a choice of what to do with texts longer than the model (see the module doc)."""
    if long_text not in LONG_TEXT_MODES:
        raise InputError(f"long_text={long_text!r} is not one of {', '.join(LONG_TEXT_MODES)}.")
    if long_text == "truncate" and (window is not None or stride is not None):
        raise InputError("window and stride apply to long_text='chunk' only.")
    texts = check_texts(texts, embedder.max_chars)
    n = len(texts)
    if n == 0:
        empty = np.zeros((0, embedder.dim), dtype=np.float32)
        return (empty, []) if return_windows else empty
    if long_text == "chunk":
        plan = _plan_chunked(embedder, texts, window, stride)
    else:
        plan = _plan_truncated(embedder, texts, truncate)
    windows = Encoded(ids=plan.ids, type_ids=plan.type_ids, offsets=[], truncated=[])
    output = SENTENCE_OUTPUT if embedder.manifest.pooled_in_graph else TOKEN_OUTPUT
    counted = None if progress is None else _TextProgress(progress, n, len(plan.ids))
    batches, results = embedder._run_batches(windows, output, counted, post=embedder._sentence_vectors)
    window_vectors = restore_order(batches, results, len(plan.ids))
    check_finite(window_vectors, "windows")
    weights = windows.lengths
    vectors = _weighted_means(window_vectors, weights, plan.first_window, embedder.manifest.normalize)
    check_finite(vectors, "texts")
    if not return_windows:
        return vectors
    bounds = plan.first_window + [len(plan.ids)]
    spans = np.asarray(plan.spans, dtype=np.int64).reshape(-1, 2)
    per_text = [Windows(window_vectors[a:b], spans[a:b], weights[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    return vectors, per_text


def _weighted_means(vectors: np.ndarray, weights: np.ndarray, first: list[int], normalize: bool) -> np.ndarray:
    """Per text, the token-count-weighted mean of its contiguous windows; a single window is kept as it is."""
    starts = np.asarray(first, dtype=np.int64)
    counts = np.diff(np.append(starts, len(vectors)))
    weighted = vectors.astype(np.float64) * weights[:, None]
    means = np.add.reduceat(weighted, starts, axis=0) / np.add.reduceat(weights.astype(np.float64), starts)[:, None]
    means = means.astype(np.float32)
    if normalize:
        means = l2_normalize(means)
    single = counts == 1
    means[single] = vectors[starts[single]]
    return means
