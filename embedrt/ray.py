"""embedrt on Ray Data: embed a Dataset's column across a cluster with the same export dir and runtime.

    import ray, embedrt.ray
    ds = ray.data.read_parquet("s3://bucket/corpus/")
    ds = embedrt.ray.embed_dataset(ds, "models/minilm", text_column="text", concurrency=8)
    ds.write_parquet("s3://bucket/vectors/")

`Embed` is the callable class `Dataset.map_batches` runs in actors: each actor loads the export once
and runs every batch through `TextEmbedder.embed` (token budget, truncation accounting, NaN guard,
provider check) or `ImageEmbedder.embed` (a column of paths or bytes). The export dir reaches the
workers as a path they can all read (a shared file system, or the same path on every node), or
through the object store with `put_export(dir)`. Truncated texts are counted per batch in the
`embedrt_truncated` column (on the batch's first row, so a retried batch counts once): `truncated_total(ds)`.
"""

from __future__ import annotations

import io
import math
import os
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Sequence

import numpy as np

from embedrt.errors import EmbedrtError, InputError, require_count

TRUNCATED_COLUMN = "embedrt_truncated"
DEFAULT_BATCH_SIZE = 512  # rows per block and map_batches call: sorted, pads 1.4 % more tokens than one global sort


def ray_module() -> ModuleType:
    """ray, with ray.data, or an error naming the extra that installs it (the one import site of ray)."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EmbedrtError("embedrt.ray needs Ray Data: pip install 'embedrt[ray]'.") from exc
    return ray


class ExportRef:
    """An export dir packed into the object store: workers unpack it once per process, no shared file system needed."""

    def __init__(self, ref: Any, name: str) -> None:
        self.ref, self.name = ref, name

    def local_path(self) -> Path:
        cached = _UNPACKED.get(self.ref.hex())
        if cached is None:
            target = Path(tempfile.mkdtemp(prefix="embedrt-export-")) / self.name
            with tarfile.open(fileobj=io.BytesIO(ray_module().get(self.ref)), mode="r") as tar:
                tar.extractall(target, filter="data")
            cached = _UNPACKED[self.ref.hex()] = target
        return cached


_UNPACKED: dict[str, Path] = {}


def put_export(path: str | os.PathLike) -> ExportRef:
    """Ship an export dir through Ray's object store (for clusters without a path every node can read)."""
    from embedrt.manifest import read_manifest

    path = Path(path)
    read_manifest(path)  # refuse a broken dir here, not in every actor
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for item in sorted(path.iterdir()):
            tar.add(item, arcname=item.name)
    return ExportRef(ray_module().put(buffer.getvalue()), path.name)


class Embed:
    """The map_batches callable: `column` (texts, or image paths/bytes) in, float32 vectors in `output_column` out.

    `threads` caps ONNX Runtime's threads in this actor; `actor_sizing` says what num_cpus to give map_batches.
    """

    def __init__(self, model: str | os.PathLike | ExportRef, *, column: str = "text", output_column: str = "embedding",
                 device: str = "cpu", threads: int | None = None, **options: Any) -> None:
        import embedrt

        path = model.local_path() if isinstance(model, ExportRef) else Path(model)
        session = {"intra_op_threads": threads} if threads else None
        self.embedder = embedrt.load(path, device=device, session=session, **options)
        self.column, self.output_column = column, output_column

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.column not in batch:
            raise InputError(f"the dataset has no {self.column!r} column (found {', '.join(batch)}); pass text_column=NAME.")
        values = batch[self.column].tolist()
        for i, value in enumerate(values):
            if value is None:
                raise InputError(f"column {self.column!r}: a null value (row {i} of a batch of {len(values)}); drop or fill nulls first.")
        before = getattr(self.embedder, "truncated_total", 0)
        batch[self.output_column] = self.embedder.embed(values)
        counts = np.zeros(len(values), dtype=np.int64)
        if len(values):
            counts[0] = getattr(self.embedder, "truncated_total", 0) - before
        batch[TRUNCATED_COLUMN] = counts
        return batch


def actor_sizing(node_cpus: Sequence[float], *, threads: int = 1, concurrency: int | None = None) -> tuple[int, float]:
    """(actors, CPUs each reserves) for actors of `threads` ONNX Runtime threads on nodes with these CPUs.

    By default one actor per `threads` CPUs of every node, so the actors' threads use every core. Each
    actor reserves fewer CPUs than it runs threads: a node full of actors keeps one CPU free for Ray Data's
    read and write tasks, which never start (and the job never ends) when actors hold every CPU.
    """
    require_count("threads", threads, "the ONNX Runtime threads per actor")
    if concurrency is not None:
        require_count("concurrency", concurrency, f"the number of actors (or None for one per {threads} CPU(s))")
    cpus = [int(c) for c in node_cpus if c >= 1]
    if not cpus:
        raise EmbedrtError("the Ray cluster has no node with a CPU; start Ray with num_cpus >= 1 (ray.init(num_cpus=N)).")
    per_node = [max(1, c // threads) for c in cpus]
    actors = concurrency or sum(per_node)
    reserve = min(threads, *((c - 1) / k for c, k in zip(cpus, per_node)), (sum(cpus) - len(cpus)) / actors)
    return actors, math.floor(reserve * 10_000) / 10_000  # Ray counts CPUs in 1/10,000ths; rounding up could take the free one


def node_cpus(ray: ModuleType) -> list[float]:
    """CPUs of each live node of the connected cluster."""
    return [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]


def embed_dataset(ds, model: str | os.PathLike | ExportRef, *, text_column: str = "text", output_column: str = "embedding",
                  concurrency: int | None = None, threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu",
                  preserve_order: bool = True, embed_class: type[Embed] = Embed, **options: Any):
    """`ds` with a vector column added by `concurrency` actors of `threads` ONNX Runtime threads each
    (default: one actor per `threads` CPUs of each node; see `actor_sizing` for the CPUs each reserves).
    `embed_class` is what the actors run: a subclass of Embed can add columns of its own.

    The dataset is cut into blocks of `batch_size` rows first, so every actor gets work however the
    source was split (a Parquet file is often a single block). preserve_order keeps the input's row
    order (the execution option of the returned Dataset's DataContext).
    """
    ray = ray_module()
    if not isinstance(model, ExportRef):
        from embedrt.manifest import read_manifest

        read_manifest(Path(model))  # a wrong path fails here, once, not in each actor
    require_count("batch_size", batch_size, "the rows per actor call")
    actors, reserved = actor_sizing(node_cpus(ray), threads=threads, concurrency=concurrency)
    embedded = ds.repartition(target_num_rows_per_block=batch_size).map_batches(
        embed_class,
        fn_constructor_args=(model,),
        fn_constructor_kwargs={"column": text_column, "output_column": output_column, "device": device, "threads": threads, **options},
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=reserved,
    )
    if preserve_order:  # a Dataset runs with the DataContext copied when it was made, not the current one
        embedded.context.execution_options.preserve_order = True
    return embedded


def truncated_total(ds) -> int:
    """Texts cut at the model's max length in an embedded dataset (executes it if it was not)."""
    return int(ds.sum(TRUNCATED_COLUMN) or 0)
