"""Every bad input of the text runtime gets a clear error naming it, or a well-defined result."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

import embedrt
from embedrt.errors import InputError, ManifestError


def test_empty_list_gives_a_zero_by_dim_array(minilm):
    vectors = minilm.embed([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32
    assert minilm.embed_tokens([]) == []


@pytest.mark.parametrize("text", ["", " ", "\n\t  "])
def test_empty_or_whitespace_text_gives_a_valid_unit_vector(minilm, text):
    vector = minilm.embed([text])[0]
    assert np.isfinite(vector).all()
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-5


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
def test_a_non_string_item_is_an_error_naming_its_index(minilm, bad):
    with pytest.raises(InputError, match=r"texts\[2\]"):
        minilm.embed(["fine", "also fine", bad])


def test_a_bare_string_is_refused_with_a_hint(minilm):
    with pytest.raises(InputError, match="wrap it in a list"):
        minilm.embed("a single string")


def test_an_over_long_text_is_truncated_and_counted(minilm_dir, caplog):
    embedder = embedrt.TextEmbedder(minilm_dir)
    with caplog.at_level(logging.WARNING, logger="embedrt"):
        vectors = embedder.embed(["short", "word " * 1000, "word " * 300])
    assert vectors.shape == (3, 384)
    assert embedder.truncated_total == 2
    assert "2 of 3 text(s) longer than the model's 256 tokens were truncated (indices [1, 2])" in caplog.text


def test_truncate_false_refuses_an_over_long_text_naming_its_index(minilm_dir):
    embedder = embedrt.TextEmbedder(minilm_dir, truncate=False)
    with pytest.raises(InputError, match=r"texts\[1\] is longer than the model's 256 tokens"):
        embedder.embed(["short", "word " * 1000])
    assert embedder.embed(["word " * 200]).shape == (1, 384)  # 202 tokens fit


def copy_export(minilm_dir, tmp_path):
    return shutil.copytree(minilm_dir, tmp_path / "copy")


def test_a_missing_export_dir_is_named(tmp_path):
    with pytest.raises(ManifestError, match="no such export dir"):
        embedrt.load(tmp_path / "absent")


def test_a_half_written_export_dir_without_manifest_is_refused(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    (copy / "embedrt.json").unlink()
    with pytest.raises(ManifestError, match=r"embedrt\.json: missing"):
        embedrt.load(copy)


def test_a_truncated_model_file_is_refused_naming_it(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    data = (copy / "model.onnx").read_bytes()
    (copy / "model.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=r"model\.onnx: .*truncated"):
        embedrt.load(copy)


def test_a_corrupt_model_file_of_the_right_size_is_refused_naming_it(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    size = (copy / "model.onnx").stat().st_size
    (copy / "model.onnx").write_bytes(b"\x00garbage" * (size // 8) + b"\x00" * (size % 8))
    with pytest.raises(ManifestError, match=r"model\.onnx: its sha256 .* differs"):
        embedrt.load(copy)
    with pytest.raises(ManifestError, match=r"model\.onnx: ONNX Runtime cannot load it"):
        embedrt.load(copy, verify="off")  # without the hash check, the session itself refuses it


def test_a_corrupt_manifest_is_refused_naming_it(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    (copy / "embedrt.json").write_text('{"schema_version": 1, "modality": "te')
    with pytest.raises(ManifestError, match=r"embedrt\.json: not valid JSON"):
        embedrt.load(copy)


def test_an_unknown_manifest_version_is_refused_with_the_reason(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    manifest = json.loads((copy / "embedrt.json").read_text())
    manifest["schema_version"] = 99
    (copy / "embedrt.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match="schema_version 99 is not understood"):
        embedrt.load(copy)


def test_a_tokenizer_that_does_not_fit_the_model_is_refused_naming_it(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    manifest = json.loads((copy / "embedrt.json").read_text())
    manifest["text"]["vocab_size"] = 1000  # as if the model's embedding table had 1000 rows
    (copy / "embedrt.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=r"tokenizer\.json: the tokenizer has 30522 token ids"):
        embedrt.load(copy)


def test_a_missing_or_corrupt_tokenizer_is_named(minilm_dir, tmp_path):
    copy = copy_export(minilm_dir, tmp_path)
    (copy / "tokenizer.json").write_text("{not json")
    with pytest.raises(ManifestError, match=r"tokenizer\.json: its sha256 .* differs"):
        embedrt.load(copy)
    with pytest.raises(ManifestError, match=r"tokenizer\.json: not a readable tokenizer"):
        embedrt.load(copy, verify="off")  # without the hash check, parsing it refuses it
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ManifestError, match=r"tokenizer\.json: missing"):
        embedrt.load(copy, verify="off")


def test_nan_from_the_engine_is_an_error_naming_the_text(minilm_dir, minilm, tmp_path):
    # A real ONNX graph in a real export dir, built to give NaN when every token id of a text is below
    # 5000 (log of max id - 5000): common words only. Never a silent NaN vector.
    import dataclasses

    import onnx
    from onnx import TensorProto, helper

    from embedrt.errors import OutputError
    from embedrt.export.staging import model_file_record
    from embedrt.manifest import MODEL_NAME, read_manifest, write_manifest

    common, rare = "the and of", "xylophone quizzically"
    assert max(minilm.tokenize([common]).ids[0]) < 5000 < max(minilm.tokenize([rare]).ids[0])
    export = tmp_path / "nan-on-common-words"
    shutil.copytree(minilm_dir, export)
    manifest = read_manifest(export)
    names = [t.name for t in manifest.inputs]
    dim = manifest.dim
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["ids", "last"], ["ids3"]),
        helper.make_node("MatMul", ["ids3", "spread"], ["token_embeddings"]),
        helper.make_node("ReduceMax", ["ids"], ["top"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["top", "threshold"], ["above"]),
        helper.make_node("Log", ["above"], ["log"]),
        helper.make_node("MatMul", ["log", "spread"], ["sentence_embedding"]),
    ]  # attention_mask and token_type_ids stay graph inputs, unread
    graph = helper.make_graph(
        nodes, "nan_on_common_words",
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names],
        [helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", dim]),
         helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor("spread", TensorProto.FLOAT, [1, dim], [1.0] * dim),
         helper.make_tensor("threshold", TensorProto.FLOAT, [], [5000.0]),
         helper.make_tensor("last", TensorProto.INT64, [1], [2])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(export / MODEL_NAME))
    write_manifest(export, dataclasses.replace(manifest, model_file=model_file_record(export / MODEL_NAME)))
    embedder = embedrt.load(export, verify="off")  # the self-check on load would refuse this graph before embed could
    assert np.isfinite(embedder.embed([rare])).all()
    with pytest.raises(OutputError, match=r"NaN or Inf for texts\[1\] \(1 input\(s\) in all\)"):
        embedder.embed([rare, common, rare])


# -- every public entry point, every hostile input (issue 11, class 4) ------------------------------------
ENTRY_POINTS = {
    "embed": lambda e, texts: e.embed(texts),
    "embed_tokens": lambda e, texts: e.embed_tokens(texts),
    "tokenize": lambda e, texts: e.tokenize(texts),
    "embed_chunked": lambda e, texts: e.embed(texts, long_text="chunk"),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "texts, message",
    [
        (None, r"texts must be a list, not NoneType; give a list of str"),
        (5, r"texts must be a list, not int"),
        (1.5, r"texts must be a list, not float"),
        (object(), r"texts must be a list, not object"),
        (np.array("a text"), r"texts is a 0-d array \(\); give a list of str"),
        (np.array([["a", "b"]]), r"texts is a 2-d array \(1, 2\)"),
        ({"a": "first", "b": "second"}, r"texts is a dict; iterating it would embed its keys\. Pass a list: list\(d\.values\(\)\)"),
        ({"a", "b"}, r"texts is a set, which has no order to return rows in"),
        (frozenset({"a"}), r"texts is a frozenset, which has no order"),
        (b"some bytes", r"texts is bytes, not a list of str: decode it"),
        (bytearray(b"ab"), r"texts is bytearray, not a list of str"),
        ("a single string", r"got a single string: wrap it in a list"),
    ],
)
def test_what_is_not_a_list_of_texts_is_refused_saying_what_to_pass(minilm, entry, texts, message):
    with pytest.raises(InputError, match=message):
        ENTRY_POINTS[entry](minilm, texts)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize(
    "bad, message",
    [
        ("ab\ud800cd", r"texts\[1\] holds the surrogate code point U\+D800 at character 2, which is not valid Unicode"),
        ("\udcff", r"texts\[1\] holds the surrogate code point U\+DCFF at character 0"),  # an undecodable byte via surrogateescape
        ("\ud83d\ude00", r"texts\[1\] holds the surrogate code point U\+D83D"),  # a UTF-16 pair left unjoined
        (b"bytes", r"texts\[1\] is bytes, not str; decode it first"),
        (None, r"texts\[1\] is NoneType, not str; use '' for an empty text"),
        (["nested"], r"texts\[1\] is list, not str; texts must be a flat list of str"),
        (np.zeros((8, 8, 3), dtype=np.uint8), r"texts\[1\] is ndarray, not str; this is a text export; images need an image export"),
        (7, r"texts\[1\] is int, not str"),
    ],
)
def test_a_bad_item_is_named_by_index_and_type_with_what_to_do(minilm, entry, bad, message):
    with pytest.raises(InputError, match=message):
        ENTRY_POINTS[entry](minilm, ["fine", bad, "also fine"])


def test_a_pil_image_or_a_path_given_to_a_text_export_says_what_to_do(minilm, tmp_path):
    from PIL import Image

    with pytest.raises(InputError, match=r"texts\[0\] is Image, not str; this is a text export; images need an image export"):
        minilm.embed([Image.new("RGB", (8, 8))])
    with pytest.raises(InputError, match=r"texts\[0\] is PosixPath, not str; a text model embeds text: read the file first"):
        minilm.embed([tmp_path / "notes.txt"])


def test_ordered_collections_and_generators_give_the_rows_of_the_same_list(minilm):
    import pandas as pd

    texts = ["a red bicycle", "", "quarterly revenue grew", "a red bicycle"]
    expected = minilm.embed(texts)
    for same in (tuple(texts), (t for t in texts), iter(texts), np.array(texts), np.array(texts, dtype=object), pd.Series(texts, index=[9, 3, 5, 1])):
        np.testing.assert_array_equal(minilm.embed(same), expected)
    assert len(minilm.embed_tokens(t for t in texts)) == 4


def test_a_dataframe_is_refused_rather_than_its_column_names_embedded(minilm):
    import pandas as pd

    with pytest.raises(InputError, match=r"texts is a pandas DataFrame, whose iteration gives column names; pass one column"):
        minilm.embed(pd.DataFrame({"text": ["a", "b"]}))


@pytest.mark.parametrize("text", ["\x00", "a\x00b", "\ufeffhello", "\uffff\U0010ffff", "\u0301" * 3000, "".join(map(chr, range(32))), "\U0001f600 \u202e"])
def test_control_characters_and_odd_code_points_give_finite_unit_vectors(minilm, text):
    vector = minilm.embed([text])[0]
    assert np.isfinite(vector).all()
    assert abs(np.linalg.norm(vector) - 1.0) < 1e-5


@pytest.mark.parametrize(
    "options, message",
    [
        ({"truncate": "no"}, r"truncate='no': give True, False or None"),
        ({"progress": 5}, r"progress=5: give a function"),
        ({"long_text": "chunk", "window": "64"}, r"window='64': give a whole number of tokens"),
        ({"long_text": "chunk", "stride": 1.5}, r"stride=1\.5: give a whole number of tokens"),
        ({"long_text": "split"}, r"long_text='split' is not one of truncate, chunk"),
    ],
)
def test_an_option_of_the_wrong_kind_is_an_error_naming_it(minilm, options, message):
    with pytest.raises(InputError, match=message):
        minilm.embed(["a text"], **options)
    if "truncate" in options:
        with pytest.raises(InputError, match=message):
            minilm.embed_tokens(["a text"], **options)
