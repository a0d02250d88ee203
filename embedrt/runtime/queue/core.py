"""The request queue: many callers (threads, asyncio) -> one stream of token-budget batches -> a future per request.

Callers prepare their own inputs (tokenise, decode images) in their own thread, so that CPU work overlaps
the engine. The engine thread merges every pending request into one round, cut by the one batcher
(runtime.batching.plan_batches), and runs its batches on the engine's lanes (runtime.engines.lanes): on a CPU,
several batches at once, one core each, each lane pooling its own batch and resolving each request's
future once all its rows are in; with one lane (a GPU, an image model) a finisher thread pools while the
engine runs the next batch. A new round forms when the last batch of the previous one has run (as TEI's
queue does), so under load rounds grow instead of queueing small batches. Each hand-off between threads
costs a request latency, so there are no more of them than that. Nothing here knows of HTTP.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Queue
from typing import Any, Protocol, Sequence

import numpy as np

from embedrt.errors import EmbedrtError, InputError
from embedrt.runtime.batching import batch_costs, plan_batches
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.lanes import Lanes

DEFAULT_MAX_WAIT_MS = 2.0  # a lone request waits this long for company before its round starts
DEFAULT_MAX_QUEUED = 256  # requests submitted and not yet answered; one more is a QueueFullError
STAGE_DEPTH = 2  # batches run ahead of the finisher

SENTENCE, TOKENS = "sentence", "tokens"  # what a text request wants per input


class QueueFullError(EmbedrtError):
    """The queue holds its maximum of unanswered requests; retry later or raise max_queued."""


class QueueClosedError(EmbedrtError):
    """The queue was closed (the service is stopping) and takes no new requests."""


class Observer(Protocol):
    """What the queue reports, for metrics; every method is optional to implement (see NullObserver)."""

    def on_batch(self, size: int, tokens: int, seconds: float) -> None: ...

    def on_request(self, outcome: str, *, prepare: float, queued: float, inference: float, inputs: int, tokens: int) -> None: ...


class NullObserver:
    def on_batch(self, size: int, tokens: int, seconds: float) -> None:
        pass

    def on_request(self, outcome: str, *, prepare: float, queued: float, inference: float, inputs: int, tokens: int) -> None:
        pass


class EmbedFuture(Future):
    """A concurrent.futures.Future with the request's token count (known at submit time)."""

    tokens: int = 0


@dataclass(eq=False)
class _Request:
    items: list[Any]  # per input: token ids (text) or pixels (image)
    want: str
    future: EmbedFuture
    prepare_s: float
    enqueued: float = field(default_factory=time.perf_counter)
    started: float = 0.0
    results: list[Any] = field(default_factory=list)
    missing: int = 0
    failed: bool = False


class _Engine(Protocol):
    """The modality's part: how inputs are costed, padded, run and read back."""

    round_inputs: int  # inputs pending at which a round starts without waiting
    lanes: Lanes  # where a round's batches run (several at once on a CPU text engine)

    def cost(self, item: Any) -> int: ...

    def plan(self, costs: Sequence[int]) -> list[np.ndarray]: ...

    def prepare(self, items: list[Any], wants: set[str]) -> dict[str, np.ndarray]: ...

    def run(self, inputs: dict[str, np.ndarray], wants: set[str], engine: Backend) -> dict[str, np.ndarray]: ...

    def rows(self, out: dict[str, np.ndarray], items: list[Any], wants: list[str]) -> list[Any]: ...

    def collect(self, results: list[Any], want: str) -> Any: ...


class RequestQueue:
    """One per model. `submit(inputs) -> Future`, `await embed_async(inputs)`, `embed(inputs)` from any thread."""

    def __init__(self, engine: _Engine, *, max_wait_ms: float = DEFAULT_MAX_WAIT_MS, max_queued: int = DEFAULT_MAX_QUEUED,
                 observer: Observer | None = None, name: str = "model") -> None:
        if max_wait_ms < 0 or max_queued < 1:
            raise EmbedrtError(f"max_wait_ms ({max_wait_ms}) must be >= 0 and max_queued ({max_queued}) >= 1.")
        self.engine = engine
        self.max_wait = max_wait_ms / 1000
        self.max_queued = max_queued
        self.observer: Observer = observer or NullObserver()
        self.name = name
        self._pending: deque[_Request] = deque()
        self._unanswered = 0  # submitted, future not yet resolved
        self._last_round = 1  # requests the last round took: as many are expected back for the next
        self._cond = threading.Condition()
        self._closed = False
        self._to_finisher: Queue = Queue(STAGE_DEPTH)  # with one lane: batches run ahead of their pooling
        self._rows_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=target, name=f"embedrt-queue-{name}-{stage}", daemon=True)
            for stage, target in (("engine", self._engine_loop), ("finisher", self._finisher))
        ]
        for thread in self._threads:
            thread.start()

    # -- what callers use ---------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Requests submitted and not yet answered (waiting or in a batch)."""
        return self._unanswered

    def _enqueue(self, items: list[Any], want: str, prepare_s: float) -> EmbedFuture:
        future = EmbedFuture()
        future.tokens = int(sum(self.engine.cost(i) for i in items))
        request = _Request(items, want, future, prepare_s, missing=len(items))
        if not items:
            future.set_running_or_notify_cancel()
            future.set_result(self.engine.collect([], want))
            return future
        with self._cond:
            if self._closed:
                raise QueueClosedError(f"the queue of {self.name} is closed (the service is stopping); send the request elsewhere or later.")
            if self._unanswered >= self.max_queued:
                raise QueueFullError(f"the queue of {self.name} holds its maximum of {self.max_queued} unanswered requests; retry shortly.")
            self._unanswered += 1
            self._pending.append(request)
            self._cond.notify_all()
        future.add_done_callback(self._answered)
        return future

    def _answered(self, future: Future) -> None:
        with self._cond:
            self._unanswered -= 1
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Take no new requests, answer every one already taken, stop the threads."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._unanswered == 0, timeout)
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the two threads ----------------------------------------------------------------------------
    def _next_round(self) -> list[_Request] | None:
        """Every pending request, once the oldest has waited max_wait, a batch's worth is pending, or as many
        requests as the last round held (callers who wait for their answer send again: no need to wait longer)."""
        with self._cond:
            while not self._pending:
                if self._closed:
                    return None
                self._cond.wait()
            deadline = self._pending[0].enqueued + self.max_wait
            while (not self._closed and len(self._pending) < self._last_round
                   and sum(len(r.items) for r in self._pending) < self.engine.round_inputs):
                left = deadline - time.perf_counter()
                if left <= 0:
                    break
                self._cond.wait(left)
            taken = list(self._pending)
            self._pending.clear()
            self._last_round = len(taken)
        started = time.perf_counter()
        live = []
        for request in taken:
            if request.future.set_running_or_notify_cancel():  # a cancelled (timed-out) request costs nothing
                request.started = started
                request.results = [None] * len(request.items)
                live.append(request)
        return live

    def _engine_loop(self) -> None:
        while True:
            round_ = self._next_round()
            if round_ is None:
                self._to_finisher.put(None)
                return
            owners = [(r, i) for r in round_ for i in range(len(r.items))]
            items = [r.items[i] for r, i in owners]
            costs = [self.engine.cost(item) for item in items]
            plan = self.engine.plan(costs)
            batches = [([owners[k] for k in idx], [items[k] for k in idx]) for idx in plan]
            for _ in self.engine.lanes.map(lambda engine, b: self._run_batch(*batches[b], engine), batch_costs(costs, plan)):
                pass  # the round's batches are all run before the next round forms

    def _run_batch(self, batch: list[tuple[_Request, int]], items: list[Any], engine: Backend) -> None:
        wants = {r.want for r, _ in batch}
        try:
            inputs = self.engine.prepare(items, wants)
            start = time.perf_counter()
            out = self.engine.run(inputs, wants, engine)
        except Exception as exc:  # noqa: BLE001 - reported on the futures, never lost
            self._fail(batch, exc)
            return
        self.observer.on_batch(len(batch), int(sum(self.engine.cost(item) for item in items)), time.perf_counter() - start)
        if self.engine.lanes.count > 1:
            self._finish(batch, out)  # several lanes overlap one another's CPU work: no hand-off needed
        else:
            self._to_finisher.put((batch, out))

    def _finisher(self) -> None:
        while True:
            work = self._to_finisher.get()
            if work is None:
                return
            self._finish(*work)

    def _finish(self, batch: list[tuple[_Request, int]], out: dict[str, np.ndarray]) -> None:
        """Pool a batch's rows into their requests; resolve each request whose last row this was."""
        try:
            rows = self.engine.rows(out, [r.items[i] for r, i in batch], [r.want for r, _ in batch])
        except Exception as exc:  # noqa: BLE001
            self._fail(batch, exc)
            return
        complete = []
        with self._rows_lock:  # lanes finish batches of the same request at once
            for (request, i), row in zip(batch, rows):
                if request.failed:
                    continue
                request.results[i] = row
                request.missing -= 1
                if request.missing == 0:
                    complete.append(request)
        for request in complete:
            self._resolve(request)

    def _resolve(self, request: _Request) -> None:
        try:
            value = self.engine.collect(request.results, request.want)
        except Exception as exc:  # noqa: BLE001 - a NaN output names the request's own input
            self._fail_request(request, exc)
            return
        done = time.perf_counter()
        self.observer.on_request("success", prepare=request.prepare_s, queued=request.started - request.enqueued,
                                 inference=done - request.started, inputs=len(request.items), tokens=request.future.tokens)
        request.future.set_result(value)

    def _fail(self, batch: list[tuple[_Request, int]], exc: BaseException) -> None:
        for request in {r for r, _ in batch}:
            self._fail_request(request, exc)

    def _fail_request(self, request: _Request, exc: BaseException) -> None:
        with self._rows_lock:
            if request.failed:
                return
            request.failed = True
        self.observer.on_request("error", prepare=request.prepare_s, queued=request.started - request.enqueued,
                                 inference=time.perf_counter() - request.started, inputs=len(request.items), tokens=request.future.tokens)
        request.future.set_exception(exc)
