"""BERT with CLS pooling, DistilBERT (no token_type_ids) and RoBERTa, randomly initialised, export and pass parity."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import embedrt
from embedrt.errors import ExportError, ParityError
from embedrt.export import export_text
from embedrt.export import parity
from random_models import random_bert, random_distilbert, random_roberta

TEXTS = ["hello there", "a longer sentence about embeddings and vectors", "", "東京 🚀", "word " * 200]


def torch_reference(source, texts, pooling, normalize, max_length):
    """The encoder in eager PyTorch with transformers' own tokenizer, pooled by hand."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    model = AutoModel.from_pretrained(str(source)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch)[0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = hidden[:, 0] if pooling == "cls" else (hidden * mask).sum(1) / mask.sum(1)
    if normalize:
        pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return pooled.numpy()


@pytest.mark.parametrize("family", ["bert-cls", "distilbert", "roberta"])
def test_random_encoder_exports_and_matches_pytorch(family, tmp_path, minilm_source):
    source = tmp_path / family
    source.mkdir()
    if family == "bert-cls":
        random_bert(source, minilm_source, pooling="cls")
    elif family == "distilbert":
        random_distilbert(source, minilm_source)
    else:
        random_roberta(source)
    out = export_text(source, tmp_path / f"{family}-onnx")
    manifest = json.loads((out / "embedrt.json").read_text())
    assert manifest["parity"]["min_cosine"] >= 0.99999
    inputs = [i["name"] for i in manifest["inputs"]]
    assert ("token_type_ids" in inputs) == (family != "distilbert")
    pooling = "cls" if family == "bert-cls" else "mean"
    assert manifest["pooling"] == pooling
    max_length = manifest["text"]["max_length"]
    assert max_length == 128
    vectors = embedrt.load(out).embed(TEXTS)
    reference = torch_reference(source, TEXTS, pooling, False, max_length)
    cosine = (vectors * reference).sum(1) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1))
    assert cosine.min() >= 0.99999


def test_pooling_and_normalisation_can_be_overridden(tmp_path, minilm_source):
    source = random_bert(tmp_path / "bert", minilm_source, pooling="cls")
    out = export_text(source, tmp_path / "max", pooling="max", normalize=True)
    manifest = json.loads((out / "embedrt.json").read_text())
    assert manifest["pooling"] == "max" and manifest["normalize"] is True
    vectors = embedrt.load(out).embed(TEXTS[:3])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_graph_without_pooling_is_pooled_by_the_runtime_identically(tmp_path, minilm_dir):
    out = export_text("default", tmp_path / "unpooled", pool_in_graph=False)
    manifest = json.loads((out / "embedrt.json").read_text())
    assert [o["name"] for o in manifest["outputs"]] == ["token_embeddings"]
    texts = TEXTS + ["The cat sits outside."]
    np.testing.assert_allclose(embedrt.load(out).embed(texts), embedrt.load(minilm_dir).embed(texts), atol=1e-5)


def test_an_export_that_misses_its_parity_gate_fails_and_leaves_nothing(tmp_path, monkeypatch, minilm_source):
    source = random_distilbert(tmp_path / "distil", minilm_source)
    monkeypatch.setitem(parity.THRESHOLDS, "fp32", {"min_cosine": 1.5})  # no real export can reach it
    out = tmp_path / "failed"
    with pytest.raises(ParityError, match="min_cosine .* < 1.5"):
        export_text(source, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "distil"]  # no partial dir left beside it either


def test_a_failed_export_keeps_the_previous_good_one(tmp_path, monkeypatch, minilm_source):
    source = random_distilbert(tmp_path / "distil", minilm_source)
    out = export_text(source, tmp_path / "good")
    before = (out / "embedrt.json").read_text()
    monkeypatch.setitem(parity.THRESHOLDS, "fp32", {"min_cosine": 1.5})
    with pytest.raises(ParityError):
        export_text(source, out, overwrite=True)
    monkeypatch.undo()  # the gate the export was made under, which its self-check on load applies again
    assert (out / "embedrt.json").read_text() == before
    assert embedrt.load(out).embed(["still loads"]).shape == (1, 64)


def test_export_refuses_a_non_empty_out_dir_without_overwrite(tmp_path, minilm_source):
    source = random_distilbert(tmp_path / "distil", minilm_source)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="--overwrite"):
        export_text(source, tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"


def test_export_names_a_source_that_is_not_a_model_dir(tmp_path):
    with pytest.raises(ExportError, match="config.json"):
        export_text(tmp_path, tmp_path / "out")
    with pytest.raises(ExportError, match="not a directory"):
        export_text(tmp_path / "nowhere", tmp_path / "out")
