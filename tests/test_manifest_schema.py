"""The manifest is validated, not trusted (issue 11, class 3): each edited field is refused on load naming the file and
the field, by its schema (types, allowed values) or against the graph, before it can fail inside ONNX Runtime."""

from __future__ import annotations

import json
import shutil

import pytest

import embedrt
from embedrt.errors import ManifestError


def _edited(minilm_dir, tmp_path, edit) -> str:
    copy = shutil.copytree(minilm_dir, tmp_path / "copy")
    path = copy / "embedrt.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    return copy


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def edit(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return edit


def _drop(section, key):
    return lambda data: data[section].pop(key)


@pytest.mark.parametrize(
    "edit, field",
    [
        (_set("dim", 100), "'dim' is 100 but the graph's sentence_embedding has 384"),
        (_set("dim", "384"), "field 'dim' is '384' (str); expected int"),
        (_set("dim", 0), "field 'dim' is 0"),
        (_set("text", "max_length", 0), "field 'text.max_length' is 0"),
        (_set("text", "max_length", 100000), "field 'text.max_length' is 100000; expected at most the model's 512 positions"),
        (_set("pooling", "median"), "field 'pooling' is 'median'"),
        (_drop("text", "vocab_size"), "field 'text.vocab_size' is 0"),
        (_set("text", "pad_token_id", -1), "field 'text.pad_token_id' is -1"),
        (_set("normalize", "yes"), "field 'normalize' is 'yes' (str); expected bool"),
        (_set("precision", "int4"), "field 'precision' is 'int4'"),
        (_set("max_batch_size", 0), "field 'max_batch_size' is 0"),
        (_set("model_file", "name", "../model.onnx"), "field 'model_file.name' is '../model.onnx'"),
        (_set("model_file", "sha256", "abc"), "field 'model_file.sha256' is 'abc'"),
        (_set("inputs", 0, "dtype", "string"), "field 'inputs[0].dtype' is 'string'"),
        (_set("inputs", 0, "name", "ids"), "field 'inputs' names ['ids', 'attention_mask', 'token_type_ids'] but the graph takes"),
        (_set("outputs", 1, "name", "pooled"), "field 'outputs' is ['token_embeddings', 'pooled']; expected an output named 'sentence_embedding'"),
        (_set("outputs", 0, "name", "hidden"), "field 'outputs' names ['hidden'], which the graph does not have"),
        (_set("outputs", 1, "shape", ["batch", 768]), "gives sentence_embedding 768 values a row but the graph gives 384"),
        (_set("modality", "audio"), "field 'modality' is 'audio'"),
    ],
)
def test_an_edited_field_is_refused_naming_the_file_and_the_field(minilm_dir, tmp_path, edit, field):
    copy = _edited(minilm_dir, tmp_path, edit)
    with pytest.raises(ManifestError) as caught:
        embedrt.load(copy)
    message = str(caught.value)
    assert field in message
    assert str(copy / "embedrt.json") in message and "re-export" in message.lower()


def test_an_unedited_manifest_loads(minilm_dir, tmp_path):
    copy = _edited(minilm_dir, tmp_path, lambda data: None)
    assert embedrt.load(copy).embed(["fine"]).shape == (1, 384)
