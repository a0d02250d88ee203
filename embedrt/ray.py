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
import os
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from embedrt.errors import EmbedrtError, InputError

TRUNCATED_COLUMN = "embedrt_truncated"
DEFAULT_BATCH_SIZE = 512  # rows per map_batches call: enough for the token-budget batcher to sort, small next to a block


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

    `threads` caps ONNX Runtime's threads in this actor: give map_batches the same num_cpus.
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


def embed_dataset(ds, model: str | os.PathLike | ExportRef, *, text_column: str = "text", output_column: str = "embedding",
                  concurrency: int | None = None, threads: int = 1, batch_size: int = DEFAULT_BATCH_SIZE, device: str = "cpu",
                  preserve_order: bool = True, **options: Any):
    """`ds` with a vector column added by `concurrency` actors (default: one per `threads` CPUs of the cluster, one CPU
    left for reading and writing). Actors that take every CPU starve Ray Data's read tasks: the job then never ends.

    preserve_order keeps the input's row order (the execution option of the returned Dataset's DataContext).
    """
    ray = ray_module()
    if not isinstance(model, ExportRef):
        from embedrt.manifest import read_manifest

        read_manifest(Path(model))  # a wrong path fails here, once, not in each actor
    if concurrency is None:  # one CPU stays free for the read and write tasks, or actors holding every CPU starve them
        concurrency = max(1, (int(ray.cluster_resources().get("CPU", 1)) - 1) // threads)
    embedded = ds.map_batches(
        Embed,
        fn_constructor_args=(model,),
        fn_constructor_kwargs={"column": text_column, "output_column": output_column, "device": device, "threads": threads, **options},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=threads,
    )
    if preserve_order:  # a Dataset runs with the DataContext copied when it was made, not the current one
        embedded.context.execution_options.preserve_order = True
    return embedded


def truncated_total(ds) -> int:
    """Texts cut at the model's max length in an embedded dataset (executes it if it was not)."""
    return int(ds.sum(TRUNCATED_COLUMN) or 0)
