"""One input row as every source gives it, and the Unicode check every source applies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    number: int  # 0-based position among the input's rows: the default id
    where: str  # for messages: "in.jsonl:12", "in.parquet, row 13", "TEXT argument 2"
    id: Any
    value: Any  # the text, or the image path; None when `problem` says why the row is unusable
    problem: str | None = None


def unicode_problem(text: str) -> str | None:
    """Why `text` cannot be encoded as UTF-8 (a lone surrogate from a JSON escape or an undecodable argv byte), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"the text holds a lone surrogate (U+{ord(text[exc.start]):04X} at character {exc.start}); give valid Unicode"
    return None


def decode_utf8(raw: bytes) -> tuple[str | None, str | None]:
    """(text, None) or (None, why the bytes are not UTF-8)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 ({exc.reason} at byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); convert the file to UTF-8"
