"""FeatureEmbedder: rows of named features (a user or item tower's inputs) -> checked -> batches -> backend -> float32 (n, dim)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedrt.errors import EmbedrtError, ManifestError
from embedrt.manifest import FeatureColumn, FeaturesSection, Manifest, read_manifest
from embedrt.runtime.engines.backend import Backend
from embedrt.runtime.engines.self_check import open_engine, self_check
from embedrt.runtime.features.rows import ID_KINDS, KINDS, LAYOUTS, CheckedRows, check_rows, reference_rows
from embedrt.runtime.outputs import check_finite

DEFAULT_BATCH_SIZE = 1024  # rows per engine call: a tower is a few gathers and small matmuls, large batches amortise the call

Progress = Callable[[int], None]  # called with the number of rows just finished


class FeatureEmbedder:
    """Vectors from a `features` export dir: `embed(rows)` with rows as a dict of columns, row dicts, a DataFrame or an Arrow table.

    `device` is "cpu", "cuda" or "tensorrt"; a provider ONNX Runtime did not activate is an error.
    `verify` ("error", "warn", "off"): on load the files' hashes are checked and the export's reference
    rows are embedded and held to the precision's gate (`self_check` keeps the report).
    Safe to call from several threads at once.
    """

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        *,
        max_batch_size: int | None = None,
        session: dict[str, Any] | None = None,
        backend: Backend | None = None,
        verify: str = "error",
        **backend_options: Any,
    ) -> None:
        self.path = Path(path)
        self.manifest: Manifest = read_manifest(self.path)
        if self.manifest.modality != "features" or self.manifest.features is None:
            raise ManifestError(f"{self.path}: a {self.manifest.modality} export; use embedrt.load() for it.")
        check_section(self.manifest.features, str(self.path))
        backend = open_engine(
            self.path, self.manifest, device=device, max_batch_size=max_batch_size, session=session, backend=backend,
            verify=verify, options=backend_options,
        )
        self.backend = backend
        self.device = device
        self.max_batch_size = min(max_batch_size or DEFAULT_BATCH_SIZE, backend.max_batch_size)
        if self.max_batch_size < 1:
            raise EmbedrtError(f"max_batch_size ({max_batch_size}) must be >= 1.")
        self.self_check = self_check(self.path, self.manifest, lambda ref: self.embed(reference_rows(ref)), verify)

    @property
    def dim(self) -> int:
        return self.manifest.dim

    @property
    def columns(self) -> tuple[FeatureColumn, ...]:
        assert self.manifest.features is not None
        return self.manifest.features.columns

    @property
    def output(self) -> str:
        assert self.manifest.features is not None
        return self.manifest.features.output

    @property
    def providers(self) -> list[str]:
        return self.backend.providers

    def __repr__(self) -> str:
        return f"FeatureEmbedder({str(self.path)!r}, dim={self.dim}, columns={[c.name for c in self.columns]}, providers={self.providers})"

    def check(self, rows: Any) -> CheckedRows:
        """Stage 1 (CPU): every column checked; raises InputError naming the column and the row."""
        return check_rows(self.columns, rows)

    def embed(self, rows: Any, *, progress: Progress | None = None) -> np.ndarray:
        """float32 (n, dim), one vector a row, in the rows' order."""
        checked = self.check(rows)
        vectors = np.zeros((checked.n, self.dim), dtype=np.float32)
        for span, feed in checked.feeds(self.max_batch_size):
            out = self.backend.run(feed, [self.output])[self.output]
            check_finite(out, "rows", span.start)
            vectors[span] = out
            if progress is not None:
                progress(span.stop - span.start)
        return vectors


def check_section(section: FeaturesSection, where: str) -> None:
    """A features section this runtime can feed: known kinds and layouts, ids with a range."""
    for c in section.columns:
        if c.kind not in KINDS:
            raise ManifestError(f"{where}: column {c.name!r} has kind {c.kind!r}, not one of {', '.join(KINDS)}; re-export with this embedrt.")
        if c.kind == "id_list" and c.layout not in LAYOUTS:
            raise ManifestError(f"{where}: id_list column {c.name!r} has layout {c.layout!r}, not one of {', '.join(LAYOUTS)}.")
        if c.kind in ID_KINDS and c.num_embeddings < 1:
            raise ManifestError(f"{where}: id column {c.name!r} records no valid range (num_embeddings); re-export it.")
