"""Two stages overlapped: a producer thread computes the next items while the caller's thread consumes the current one."""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_DONE = object()
_POLL_S = 0.05  # how often a producer blocked on a full queue looks whether the consumer left


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """The items of `items` in order, computed ahead by a producer thread that holds at most `depth` ready.

    An exception raised while computing an item is raised here, at that item. When the consumer stops early
    (an exception in its own stage, or the generator closed), the producer stops too: no thread is left blocked.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, raised in its thread
            put((_DONE, exc))
            return
        put((_DONE, None))

    producer = threading.Thread(target=produce, name="embedrt-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item, error = ready.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        producer.join()
