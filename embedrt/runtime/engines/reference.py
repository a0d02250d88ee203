"""Reference inputs and their PyTorch fp32 vectors, kept in the export dir so that every load can check the engine.

`reference.npz` holds `vectors` (float32 (n, dim), from the PyTorch source at export) and the inputs they
came from, under modality names: `texts` (str), `images` (uint8 (n, h, w, 3)), or one `column:NAME` array
per feature column. A few kB for text; the images are small thumbnails of the parity photographs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedrt.errors import ManifestError

REFERENCE_NAME = "reference.npz"
VECTORS = "vectors"


def write_reference(export_dir: Path, inputs: dict[str, np.ndarray], vectors: np.ndarray) -> Path:
    """Save the reference `inputs` and their source `vectors` into `export_dir` (a staged dir: no atomic rename needed)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if VECTORS in inputs or any(len(v) != len(vectors) for v in inputs.values()):
        raise ValueError(f"reference inputs {sorted(inputs)} must each have {len(vectors)} rows and not be named {VECTORS!r}.")
    path = Path(export_dir) / REFERENCE_NAME
    np.savez_compressed(path, **{VECTORS: vectors}, **inputs)
    return path


def read_reference(export_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The reference inputs (by name) and vectors, or a ManifestError naming the file."""
    path = Path(export_dir) / REFERENCE_NAME
    if not path.is_file():
        raise ManifestError(
            f"{path}: missing; the engine cannot be checked on load without its reference vectors. "
            "Re-export the model with this embedrt, or load it with verify='off' to skip the check."
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable ({exc}); the export dir is damaged, re-export the model.") from exc
    vectors = arrays.pop(VECTORS, None)
    if vectors is None or vectors.ndim != 2 or not arrays or any(len(v) != len(vectors) for v in arrays.values()):
        raise ManifestError(f"{path}: not a set of reference inputs and vectors; re-export the model.")
    return arrays, vectors
