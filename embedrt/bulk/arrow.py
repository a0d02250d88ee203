"""The one import site of pyarrow, an optional extra."""

from __future__ import annotations

from types import ModuleType

from embedrt.errors import EmbedrtError


def pyarrow() -> ModuleType:
    """pyarrow, with .csv and .parquet imported, or an error naming the extra that installs it."""
    try:
        import pyarrow
        import pyarrow.csv
        import pyarrow.parquet
    except ImportError as exc:
        raise EmbedrtError(
            "reading .csv/.tsv/.parquet and writing .parquet needs pyarrow: pip install 'embedrt[bulk]' "
            "(or use .txt/.jsonl in and .jsonl/.npy out)."
        ) from exc
    return pyarrow
