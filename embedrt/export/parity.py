"""Parity of an export against its PyTorch source: the measure, the thresholds and the gate."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedrt.errors import ParityError

# Minimum cosine per precision; mean cosine where a precision is noisy by design.
THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"min_cosine": 0.99999},
    "fp16": {"min_cosine": 0.999, "mean_cosine": 0.9999},
    "int8": {"min_cosine": 0.99, "mean_cosine": 0.995},
}

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


# Quantised precisions are noisy by design: their gate also reads this many varied sentences.
QUANTIZED_PARITY_SENTENCES = 200


def parity_texts(precision: str) -> list[str]:
    """The texts a precision's gate is measured on: the built-in ones, plus varied prose for int8."""
    texts = list(PARITY_TEXTS)
    if precision == "int8":
        from embedrt.sample_text import sample_sentences

        texts += sample_sentences(QUANTIZED_PARITY_SENTENCES, min_words=1, max_words=160, seed=20)
    return texts


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64).reshape(len(a), -1)
    b = b.astype(np.float64).reshape(len(b), -1)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-30)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    """Cosine (min, mean) per row and max-abs difference of two (n, ...) arrays."""
    cos = cosine_rows(reference, candidate)
    return {
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "max_abs": float(np.abs(reference.astype(np.float64) - candidate.astype(np.float64)).max()),
        "n": int(len(reference)),
    }


def parity_report(precision: str, measured: dict[str, Any], *, reference: str = "pytorch fp32") -> dict[str, Any]:
    """The manifest's parity section: what was measured, against what, and whether it passed."""
    thresholds = THRESHOLDS[precision]
    passed = all(measured[key] >= bound for key, bound in thresholds.items())
    return {"reference": reference, "precision": precision, **measured, "thresholds": thresholds, "passed": passed}


def gate(report: dict[str, Any], what: str) -> None:
    """Raise ParityError when the report missed its thresholds."""
    if report["passed"]:
        return
    misses = ", ".join(f"{k} {report[k]:.6f} < {v}" for k, v in report["thresholds"].items() if report[k] < v)
    raise ParityError(
        f"{what}: {report['precision']} export failed its parity gate against {report['reference']} ({misses}); "
        "no export dir was written. Try another precision or optimisation level."
    )
