"""Lanes: on a CPU, several batches at once on one core each, instead of one batch at a time on every core.

ONNX Runtime runs one batch on all its threads by splitting each operator between them. An embedding
batch's matrices are small (a few hundred tokens by 384), and the threads spend a share of every
operator waiting for each other. Two batches at once, on one thread each, do the same work faster:
all-MiniLM-L6-v2 fp32, 1,024 mixed sentences, on the Xeon with AMX (2 cores), 2 lanes vs 2 threads:
- in rounds of 128 texts (a server's queue at 16 callers): 164-167 vs 149-154 texts/s;
- in rounds of 512: 172-173 vs 162-163 texts/s;
- in rounds of 8 (one request): 136-144 vs 128-132 texts/s.
A lone batch still runs on every core: a short query takes 3.1 ms on 2 threads and 5.0 ms on one.

The lanes share one single-thread session, a second copy of the model in memory beside the embedder's own
(ONNX Runtime runs concurrent calls of a session each on its calling thread): all-MiniLM-L6-v2 fp32 (90 MB)
took 310 MB resident after load with two lanes, 194 MB with one (2-core Xeon, onnxruntime 1.32).
`Lanes.engine_bytes` is what opening that session added here; `embedrt info` and `embedrt serve` show it,
and lanes=1 saves it. Batches go to the lanes longest first, so that the lanes finish together.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence, TypeVar

from embedrt.errors import EmbedrtError, require_count
from embedrt.processes import resident_bytes
from embedrt.runtime.engines.backend import Backend

T = TypeVar("T")
Work = Callable[[Backend, int], T]  # (the engine to run on, the batch's index) -> its result


class Lanes:
    """`count` batches at once on `single` (a one-thread session of the same model); a lone batch on `whole`."""

    def __init__(self, whole: Backend, single: Backend | None = None, count: int = 1, engine_bytes: int | None = 0) -> None:
        self.whole = whole
        self.single = single if count > 1 else None
        self.count = count if self.single is not None else 1
        self.engine_bytes = engine_bytes if self.single is not None else 0  # resident memory the lanes' engine added (None: unknown)
        self._pool = ThreadPoolExecutor(self.count, thread_name_prefix="embedrt-lane") if self.count > 1 else None

    def map(self, work: Work, costs: Sequence[float]) -> Iterator[tuple[int, T]]:
        """(index, work(engine, index)) for every batch, in the order they finish, yielded in the caller's thread.

        An exception of a batch's work is raised here, once the batches already started have finished.
        """
        if self._pool is None or len(costs) < 2:
            for i in range(len(costs)):
                yield i, work(self.whole, i)
            return
        order = sorted(range(len(costs)), key=lambda i: -costs[i])
        pending = {self._pool.submit(work, self.single, i): i for i in order}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield pending.pop(future), future.result()
        finally:
            for future in pending:
                future.cancel()
            wait(pending)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


def open_lanes(whole: Backend, open_single: Callable[[], Backend], *, device: str, threads: int | None, own_backend: bool,
               lanes: int | None) -> Lanes:
    """The embedder's lanes: by default one per intra-op thread on a CPU engine the embedder opened itself.

    `lanes=1` turns them off (one session, one batch at a time on every core); a GPU, a remote engine
    (Triton) or a single thread has one lane.
    """
    if lanes is not None:
        require_count("lanes", lanes, "batches run at once on a CPU, one core each")
        if lanes > 1 and (device != "cpu" or not own_backend):
            raise EmbedrtError(f"lanes={lanes}: lanes are for a CPU engine the embedder opens itself; use lanes=1 "
                               f"(or leave it unset) with device={device!r} or a backend given.")
    count = lanes if lanes is not None else (threads if device == "cpu" and own_backend else 1)
    if count < 2:
        return Lanes(whole)
    before = resident_bytes()
    single = open_single()
    after = resident_bytes()
    return Lanes(whole, single, count, engine_bytes=None if before is None or after is None else max(0, after - before))


def lane_threads(session: dict[str, Any] | None) -> int:
    from embedrt.runtime.engines.session_options import physical_cores

    return (session or {}).get("intra_op_threads") or physical_cores()
