"""pytest-benchmark suites for embedrt's pieces: `pytest benchmarks/` (not part of `make test`).

End-to-end comparisons against PyTorch are `embedrt bench`; these time one stage each, so a
regression can be traced to tokenisation, batching, the session, pooling or preprocessing.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def minilm_export():
    """The bundled all-MiniLM-L6-v2, exported once into embedrt's cache dir."""
    from embedrt.default_model import resolve_model

    return resolve_model("default")


@pytest.fixture(scope="session")
def embedder(minilm_export):
    from embedrt.runtime.text.embedder import TextEmbedder

    return TextEmbedder(minilm_export)


@pytest.fixture(scope="session")
def sentences():
    from embedrt.sample_text import sample_sentences

    return sample_sentences(256, min_words=4, max_words=64, seed=1)
