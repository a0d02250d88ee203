"""Tokenisation for text engines: a fast `tokenizers` tokenizer set up from the manifest, not from tokenizer.json.

The bundled model's tokenizer.json pads to a fixed 128 and truncates at 128 while the model
reads 256 tokens: padding and truncation here come from the manifest alone.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from tokenizers import Encoding, Tokenizer

from embedrt.errors import InputError, ManifestError
from embedrt.manifest import TextPreprocessing
from embedrt.runtime.inputs import as_input_list

TOKENIZER_NAME = "tokenizer.json"
DEFAULT_MAX_CHARS = 1_000_000  # per text: ~250k tokens, a long book; a longer str is more likely a whole file by mistake
HEAD_CHARS_PER_TOKEN = 32  # past this many characters per model token only the head is tokenised (text averages 4-6)
_SPACE = re.compile(r"\s")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

log = logging.getLogger("embedrt")


@dataclass
class Encoded:
    """Token ids of a list of texts, unpadded, one array per text."""

    ids: list[np.ndarray]
    type_ids: list[np.ndarray]
    offsets: list[list[tuple[int, int]]]  # character spans per token; empty when encode() was asked for none
    truncated: list[int]  # indices of texts cut at max_length

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(i) for i in self.ids), dtype=np.int64, count=len(self.ids))


def load_tokenizer(export_dir: Path, text: TextPreprocessing) -> Tokenizer:
    path = Path(export_dir) / TOKENIZER_NAME
    if not path.is_file():
        raise ManifestError(f"{path}: missing; the export dir is incomplete, re-export the model.")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise ManifestError(f"{path}: not a readable tokenizer ({exc}); re-export the model.") from exc
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    if text.vocab_size and vocab > text.vocab_size:
        raise ManifestError(
            f"{path}: the tokenizer has {vocab} token ids but the model's embedding table has {text.vocab_size}; "
            "this tokenizer does not belong to this model. Copy the tokenizer the model was trained with."
        )
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=text.max_length)
    return tokenizer


def check_texts(texts: Iterable[str], max_chars: int | None = None) -> list[str]:
    """The texts as a new list of str, or an InputError naming the first bad one and what to do.

    Takes any ordered collection of str (see embedrt.runtime.inputs: generators are materialised,
    dicts and sets refused). Each text must be valid Unicode (no lone surrogates) and, with
    `max_chars`, at most that many characters.
    """
    if isinstance(texts, str):
        raise InputError("texts must be a list of strings, got a single string: wrap it in a list, e.g. embed([text]).")
    if isinstance(texts, (bytes, bytearray, memoryview)):
        raise InputError(f"texts is {type(texts).__name__}, not a list of str: decode it and wrap it in a list, e.g. embed([data.decode('utf-8')]).")
    texts = as_input_list(texts, "texts", "give a list of str, e.g. embed(['a text']).")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}] is {type(text).__name__}, not str; {_not_text_hint(text)}.")
        if max_chars is not None and len(text) > max_chars:
            raise InputError(
                f"texts[{i}] has {len(text):,} characters, more than max_chars={max_chars:,}; split it into smaller texts, "
                "or raise the limit, e.g. TextEmbedder(path, max_chars=N)."
            )
        if not text.isascii():  # only a non-ASCII str can hold a surrogate
            bad = _SURROGATE.search(text)
            if bad is not None:
                raise InputError(
                    f"texts[{i}] holds the surrogate code point U+{ord(bad.group()):04X} at character {bad.start()}, which is not valid "
                    "Unicode and cannot be tokenised (often bytes decoded with errors='surrogateescape'); repair it, "
                    "e.g. text.encode('utf-8', 'replace').decode('utf-8')."
                )
    return texts


def _not_text_hint(item: Any) -> str:
    """What to do with an item of `texts` that is not a str."""
    if item is None:
        return "use '' for an empty text"
    if isinstance(item, (bytes, bytearray, memoryview)):
        return "decode it first, e.g. data.decode('utf-8')"
    if isinstance(item, os.PathLike):
        return "a text model embeds text: read the file first, e.g. path.read_text()"
    if isinstance(item, np.ndarray) or type(item).__module__.startswith("PIL."):
        return "this is a text export; images need an image export (embedrt export image ..., then embedrt.load(IMAGE_DIR))"
    if isinstance(item, (list, tuple)):
        return "texts must be a flat list of str; nested lists are not flattened"
    return "pass text only (use '' for an empty text)"


def cut_at_whitespace(text: str, start: int, size: int) -> int:
    """The end of a span of about `size` characters from `start`: just before the last whitespace in its second half, if any."""
    end = min(start + size, len(text))
    if end < len(text):
        cut = max((m.start() for m in _SPACE.finditer(text, start + size // 2, end)), default=None)
        if cut is not None and cut > start:
            end = cut
    return end


def encode(tokenizer: Tokenizer, texts: list[str], *, offsets: bool = True) -> Encoded:
    """Ids of checked texts (see check_texts), unpadded, truncated at the tokenizer's max length.

    The whole list is one parallel `encode_batch` in the tokenizers library; `offsets=False` (the embedding hot path)
    skips the character spans, and the ids of all texts are read in one pass, with no per-text Python work but the
    library's own lists.

    A text longer than HEAD_CHARS_PER_TOKEN x max length is tokenised from its head, cut at whitespace so
    the words the model reads tokenise as in the whole text; it counts as truncated when the head alone
    overflows, and the whole text is tokenised when the head does not fill the model.
    """
    max_length = (tokenizer.truncation or {}).get("max_length")
    head = None if max_length is None else HEAD_CHARS_PER_TOKEN * max_length
    long = [i for i, text in enumerate(texts) if head is not None and len(text) > head]
    inputs = list(texts)
    for i in long:
        inputs[i] = texts[i][: cut_at_whitespace(texts[i], 0, head)]  # type: ignore[arg-type]
    encodings = _encode_batch(tokenizer, inputs)  # not encode_batch_fast: it leaves `overflowing` empty, hiding truncation
    for i in long:
        if not encodings[i].overflowing:  # the head did not fill the model (mostly whitespace?): the whole text decides
            encodings[i] = _encode_batch(tokenizer, [texts[i]], offset=i)[0]
    return Encoded(
        ids=_split_arrays(encodings, "ids"),
        type_ids=_split_arrays(encodings, "type_ids"),
        offsets=[e.offsets for e in encodings] if offsets else [],
        truncated=[i for i, e in enumerate(encodings) if e.overflowing],
    )


def _split_arrays(encodings: list[Encoding], field: str) -> list[np.ndarray]:
    """One int64 array per encoding, views into one array filled in a single pass."""
    lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    flat = np.fromiter(chain.from_iterable(getattr(e, field) for e in encodings), dtype=np.int64, count=int(lengths.sum()))
    return np.split(flat, np.cumsum(lengths)[:-1]) if len(encodings) else []


def _encode_batch(tokenizer: Tokenizer, texts: list[str], offset: int = 0) -> list[Encoding]:
    try:
        return tokenizer.encode_batch(texts, add_special_tokens=True)
    except Exception as exc:  # check_texts should have refused it; name the text rather than pass a bare TypeError on
        for i, text in enumerate(texts):
            try:
                tokenizer.encode(text, add_special_tokens=True)
            except Exception:
                raise InputError(f"texts[{offset + i}]: the tokenizer cannot take it ({type(exc).__name__}: {exc}); check its characters.") from exc
        raise


def pad_batch(encoded: Encoded, indices: np.ndarray, input_names: Sequence[str], pad_id: int, length: int | None = None) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays for the texts at `indices` (to `length`, or their longest), with only the inputs the graph takes."""
    longest = max([len(encoded.ids[i]) for i in indices] + [length or 0])
    ids = np.full((len(indices), longest), pad_id, dtype=np.int64)
    mask = np.zeros((len(indices), longest), dtype=np.int64)
    type_ids = np.zeros((len(indices), longest), dtype=np.int64)
    for row, i in enumerate(indices):
        n = len(encoded.ids[i])
        ids[row, :n] = encoded.ids[i]
        mask[row, :n] = 1
        type_ids[row, :n] = encoded.type_ids[i]
    batch = {"input_ids": ids, "attention_mask": mask, "token_type_ids": type_ids}
    return {name: batch[name] for name in input_names}


def account_truncation(truncated: Sequence[int], total: int, *, allowed: bool, limit: str) -> int:
    """Over-long texts (sorted indices): refused naming the first, or warned about; returns how many were cut.

    `limit` completes "longer than the model's ...": "256 tokens", "max length".
    """
    if not truncated:
        return 0
    if not allowed:
        raise InputError(
            f"texts[{truncated[0]}] is longer than the model's {limit} ({len(truncated)} text(s) in all, "
            f"indices {list(truncated[:10])}); shorten it or pass truncate=True."
        )
    log.warning(
        "embedrt: %d of %d text(s) longer than the model's %s were truncated (indices %s%s)",
        len(truncated), total, limit, list(truncated[:10]), "..." if len(truncated) > 10 else "",
    )
    return len(truncated)
