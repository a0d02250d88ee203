"""Parity of an export against its PyTorch source: the inputs it is measured on (the measure and the gate are embedrt.gate)."""

from __future__ import annotations

from embedrt.gate import THRESHOLDS, compare, cosine_rows, gate, parity_report

__all__ = ["PARITY_TEXTS", "QUANTIZED_PARITY_SENTENCES", "THRESHOLDS", "compare", "cosine_rows", "gate", "parity_report", "parity_texts"]

# Built-in text inputs: short, long (past every max length), unicode, CJK, emoji, whitespace, empty.
PARITY_TEXTS: tuple[str, ...] = (
    "Hello world.",
    "A man is playing a guitar on stage.",
    "The quick brown fox jumps over the lazy dog.",
    "",
    "   \t\n  ",
    "naïve café résumé — Ünïcödé façade, Straße, Øresund",
    "東京は日本の首都です。人口は約一千四百万人です。",
    "北京欢迎你！机器学习与自然语言处理。",
    "서울은 한국의 수도입니다.",
    "Emoji: 🚀🔥😀👍🏽 and flags 🇫🇷🇯🇵 in a sentence.",
    "Привет, как дела? Это тест на кириллице.",
    "مرحبا بالعالم، هذا اختبار.",
    "x",
    "SELECT * FROM users WHERE id = 42; -- code is text too",
    "https://example.com/path?query=1&lang=en#fragment",
    " ".join(["Embedding models map text to vectors so that similar meanings lie close together."] * 60),
    "word " * 700,
    "Numbers 3.14159, 2.71828 and 1,000,000 with units: 5 km, 12 kg, 30 °C.",
)


# Quantised precisions (int8, bf16) are noisy by design: their gate also reads this many varied sentences.
QUANTIZED_PARITY_SENTENCES = 200


def parity_texts(precision: str) -> list[str]:
    """The texts a precision's gate is measured on: the built-in ones, plus varied prose for int8 and bf16."""
    texts = list(PARITY_TEXTS)
    if precision in ("int8", "bf16"):
        from embedrt.sample_text import sample_sentences

        texts += sample_sentences(QUANTIZED_PARITY_SENTENCES, min_words=1, max_words=160, seed=20)
    return texts
