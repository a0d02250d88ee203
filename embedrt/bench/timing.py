"""Interleaved timing: every contender runs each item in turn, so machine noise hits all of them alike."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from embedrt.runtime.batching import iter_chunks

SETTLE_S = 0.02
Run = Callable[[Any], Any]  # one call of a contender on one item (a batch of texts, a list of images, ...)


def interleave(
    runs: Mapping[str, Run],
    items: Sequence[Any],
    *,
    warmup: Sequence[Any] = (),
    tick: Callable[[], None] | None = None,
    settle_s: float = SETTLE_S,
    block: int = 1,
) -> dict[str, list[float]]:
    """Seconds per call, per contender. The items are cut into blocks of `block`: each block runs on
    every contender before the next block starts, and the starting contender rotates, so none always
    runs first (cold caches) or last. An untimed pause of `settle_s` after each contender's block lets
    its spinning threads (ONNX Runtime's pool, PyTorch's OpenMP) go to sleep before the next one is timed.

    With `block` > 1 each contender first runs the block's first item untimed, then the whole block
    back to back: the steady state of a service answering one request after another, not the first
    call after another library has flushed the caches (what one call per turn measures)."""
    names = list(runs)
    for item in warmup:
        for name in names:
            runs[name](item)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for b, chunk in enumerate(iter_chunks(items, block)):
        shift = b % len(names)
        for name in names[shift:] + names[:shift]:
            if block > 1:
                runs[name](chunk[0])
            for item in chunk:
                start = time.perf_counter()
                runs[name](item)
                seconds[name].append(time.perf_counter() - start)
                if tick is not None:
                    tick()
            if settle_s:
                time.sleep(settle_s)
    return seconds


def summarize(seconds: Sequence[float], items_per_call: float) -> dict[str, float]:
    """Latency percentiles of the calls (ms) and throughput (items/s at the median call: robust to a noisy neighbour)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    median_s = float(np.median(seconds))
    return {
        "calls": int(len(ms)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "items_per_s": float(items_per_call / median_s) if median_s > 0 else float("nan"),
    }
