"""The backend interface: what a text or image embedder needs from an engine, and nothing more."""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np


class Backend(Protocol):
    """An engine that runs the exported graph: ONNX Runtime in-process, Triton remotely, ..."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    @property
    def max_batch_size(self) -> int:
        """Largest batch one `run` call takes."""

    @property
    def is_padded(self) -> bool:
        """True when a batch costs batch_size x longest length (every dense engine); drives the token budget."""

    @property
    def providers(self) -> list[str]:
        """Where it really runs (execution providers, or a server URL)."""

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Run one batch. Safe to call from several threads at once."""
