"""Warm-up: run the profile's min, opt and max shapes once, so that TensorRT builds its engine before the first request."""

from __future__ import annotations

import logging
import time

import numpy as np

from embedrt.manifest import Manifest
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.providers import profile_dims

log = logging.getLogger("embedrt")


def warm_up_inputs(manifest: Manifest, *, max_batch: int | None = None) -> list[dict[str, np.ndarray]]:
    """One feed per distinct profile shape (min, opt, max), with the dtypes the manifest declares."""
    dims = profile_dims(manifest, max_batch=max_batch)
    dtypes = {t.name: np.dtype(t.dtype) for t in manifest.inputs}
    feeds, seen = [], set()
    for i in range(3):
        shapes = tuple((name, shapes[i]) for name, shapes in dims.items())
        if shapes in seen:
            continue
        seen.add(shapes)
        feeds.append({name: np.ones(shape, dtype=dtypes[name]) for name, shape in shapes})
    return feeds


def warm_up(backend: Backend, manifest: Manifest, *, max_batch: int | None = None) -> float:
    """Run every warm-up feed; returns the seconds it took (the engine build, on a cold TensorRT cache)."""
    start = time.perf_counter()
    for feed in warm_up_inputs(manifest, max_batch=max_batch or backend.max_batch_size):
        backend.run(feed)
    seconds = time.perf_counter() - start
    log.info("embedrt: warm-up of %s took %.1f s", backend.providers, seconds)
    return seconds
