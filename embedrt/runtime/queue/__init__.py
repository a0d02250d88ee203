"""The request queues: many callers -> one stream of batches -> a future per request (see core.py).

core.py is what every kind shares; text.py, image.py and features.py each add one kind's engine.
A new kind adds its module and one line in QUEUES.
"""

from __future__ import annotations

import importlib
from typing import Any

from embedrt.runtime.queue.core import (
    DEFAULT_MAX_QUEUED,
    DEFAULT_MAX_WAIT_MS,
    SENTENCE,
    TOKENS,
    EmbedFuture,
    NullObserver,
    Observer,
    QueueClosedError,
    QueueFullError,
    RequestQueue,
)

# manifest modality -> "module:class"; imported on use, so that a text server needs no Pillow.
QUEUES = {
    "text": "embedrt.runtime.queue.text:TextQueue",
    "image": "embedrt.runtime.queue.image:ImageQueue",
    "features": "embedrt.runtime.queue.features:FeatureQueue",
}

__all__ = ["DEFAULT_MAX_QUEUED", "DEFAULT_MAX_WAIT_MS", "SENTENCE", "TOKENS", "EmbedFuture", "NullObserver", "Observer",
           "QueueClosedError", "QueueFullError", "RequestQueue", "ImageQueue", "TextQueue", "FeatureQueue", "make_queue"]


def make_queue(embedder, **options: Any) -> RequestQueue:
    """The queue for a TextEmbedder, an ImageEmbedder or a FeatureEmbedder, chosen by its manifest's modality."""
    module, _, name = QUEUES[embedder.manifest.modality].partition(":")
    return getattr(importlib.import_module(module), name)(embedder, **options)


def __getattr__(name: str) -> Any:
    for path in QUEUES.values():
        module, _, cls = path.partition(":")
        if cls == name:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module 'embedrt.runtime.queue' has no attribute {name!r}")
