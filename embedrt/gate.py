"""The accuracy gate of an engine against its PyTorch source: the measure, the thresholds per precision and the verdict.

Used at export (every export proves itself) and at load (every engine proves itself again on this machine):
no torch here, so the runtime can apply the same gate.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from embedrt.errors import ParityError

# Minimum cosine per precision; mean cosine where a precision is noisy by design.
THRESHOLDS: dict[str, dict[str, float]] = {
    "fp32": {"min_cosine": 0.99999},
    "fp16": {"min_cosine": 0.999, "mean_cosine": 0.9999},
    "bf16": {"min_cosine": 0.999, "mean_cosine": 0.9999},
    "int8": {"min_cosine": 0.99, "mean_cosine": 0.995},
}


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
    misses = ", ".join(f"{k} {report[k]:.6f} < {v}" for k, v in report["thresholds"].items() if not report[k] >= v)  # NaN misses too
    nan = any(report[k] != report[k] for k in report["thresholds"])
    advice = ("A measure is NaN: the vectors hold NaN or Inf, which no precision mends; check the model and its inputs." if nan
              else "Try another precision or optimisation level.")
    raise ParityError(
        f"{what}: {report['precision']} export failed its parity gate against {report['reference']} ({misses}); "
        f"no export dir was written. {advice}"
    )


def describe(report: dict[str, Any]) -> str:
    """A passed gate in one line, as `embedrt export` prints it: against what, min and mean cosine, thresholds, inputs."""
    cut = lambda v: f"{math.floor(v * 1e7) / 1e7:.7f}"  # cut, not rounded: 0.99999996 must not read 1.0000000
    thresholds = ", ".join(f"{name} >= {bound}" for name, bound in report["thresholds"].items())
    inputs = report.get("inputs") or f"{report.get('n', '?')} inputs"
    return (f"parity gate passed against {report['reference']}: min cosine {cut(report['min_cosine'])}, "
            f"mean {cut(report['mean_cosine'])} ({thresholds}) on {inputs}")
