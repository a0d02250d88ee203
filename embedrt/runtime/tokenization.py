"""Tokenisation for text engines: a fast `tokenizers` tokenizer set up from the manifest, not from tokenizer.json.

The bundled model's tokenizer.json pads to a fixed 128 and truncates at 128 while the model
reads 256 tokens: padding and truncation here come from the manifest alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from embedrt.errors import InputError, ManifestError
from embedrt.manifest import TextPreprocessing

TOKENIZER_NAME = "tokenizer.json"

log = logging.getLogger("embedrt")


@dataclass
class Encoded:
    """Token ids of a list of texts, unpadded, one array per text."""

    ids: list[np.ndarray]
    type_ids: list[np.ndarray]
    offsets: list[list[tuple[int, int]]]
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


def check_texts(texts: Sequence[str]) -> list[str]:
    """A list of str, or an InputError naming the first bad item."""
    if isinstance(texts, (str, bytes)):
        raise InputError("texts must be a list of strings, got a single string: wrap it in a list, e.g. embed([text]).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"texts[{i}] is {type(text).__name__}, not str; pass text only (use '' for an empty text).")
    return texts


def encode(tokenizer: Tokenizer, texts: list[str]) -> Encoded:
    encodings = tokenizer.encode_batch(texts, add_special_tokens=True)
    return Encoded(
        ids=[np.asarray(e.ids, dtype=np.int64) for e in encodings],
        type_ids=[np.asarray(e.type_ids, dtype=np.int64) for e in encodings],
        offsets=[e.offsets for e in encodings],
        truncated=[i for i, e in enumerate(encodings) if e.overflowing],
    )


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
