"""MODEL `default`: the bundled model's export in the cache dir, made once on first use.

A front door, like embedrt.load: it may call the exporter. The checkpoint itself (SOURCE `default`)
is embedrt.bundled_model, which the exporters import.
"""

from __future__ import annotations

import os
from pathlib import Path

from embedrt.bundled_model import DEFAULT, DEFAULT_PACKAGE, cache_dir, default_source
from embedrt.errors import EmbedrtError

__all__ = ["DEFAULT", "DEFAULT_PACKAGE", "cache_dir", "default_source", "resolve_model"]


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
            from embedrt.export.text.exporter import export_text
        except ImportError as exc:
            raise EmbedrtError(
                "MODEL 'default' is exported on first use, which needs the export extra: "
                "pip install 'embedrt[export,default-model]' (or pass an existing export dir)."
            ) from exc
        export_text(DEFAULT, target, overwrite=True)
    return target
