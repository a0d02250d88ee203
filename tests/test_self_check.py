"""Every engine proves itself again on load: file hashes, the graph against the manifest, the reference vectors
against the precision's gate, on this machine (issue 16), with the real bundled model."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import embedrt
from embedrt.cli import main
from embedrt.errors import EmbedrtError, ManifestError, SelfCheckError
from embedrt.manifest import file_sha256, read_manifest
from embedrt.runtime.engines.cpu import cpu_record
from embedrt.runtime.engines.reference import REFERENCE_NAME, read_reference


def _copy(export_dir, tmp_path, name="copy"):
    return shutil.copytree(export_dir, tmp_path / name)


def _rehash(export_dir) -> None:
    """Record the current files' hashes, as an export made with them would: only the self-check can tell then."""
    path = export_dir / "embedrt.json"
    data = json.loads(path.read_text())
    model = export_dir / data["model_file"]["name"]
    data["model_file"].update(bytes=model.stat().st_size, sha256=file_sha256(model))
    data["files"] = {name: file_sha256(export_dir / name) for name in data["files"]}
    path.write_text(json.dumps(data))


def _degrade_engine(export_dir, scale: float = 0.6) -> None:
    """Noise on the word embeddings: a valid engine of the same shapes whose vectors drift (like a saturating int8 kernel)."""
    model = onnx.load(str(export_dir / "model.onnx"))
    table = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    weights = numpy_helper.to_array(table)
    noisy = weights + np.random.default_rng(0).normal(0, scale * weights.std(), weights.shape).astype(np.float32)
    table.CopyFrom(numpy_helper.from_array(noisy, table.name))
    onnx.save(model, str(export_dir / "model.onnx"))
    _rehash(export_dir)


def test_an_export_keeps_reference_texts_and_pytorch_vectors_and_the_cpu_it_was_gated_on(minilm_dir):
    inputs, vectors = read_reference(minilm_dir)
    manifest = read_manifest(minilm_dir)
    assert vectors.shape == (len(inputs["texts"]), 384) and len(inputs["texts"]) >= 6
    assert "Hello world." in inputs["texts"] and "" not in inputs["texts"]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # the model's own normalised vectors
    assert manifest.files[REFERENCE_NAME] == file_sha256(minilm_dir / REFERENCE_NAME)
    assert manifest.machine["u8s8_exact"] == cpu_record()["u8s8_exact"] and manifest.machine["flags"] == cpu_record()["flags"]


def test_load_checks_the_engine_on_this_machine_and_keeps_the_report(minilm):
    report = minilm.self_check
    assert report["passed"] and report["precision"] == "fp32"
    assert report["min_cosine"] >= 0.99999 and report["n"] >= 6
    assert report["cpu"] == cpu_record() and report["seconds"] > 0


def test_a_degraded_engine_is_refused_on_load_naming_the_cosine_and_the_cpu(minilm_dir, tmp_path):
    copy = _copy(minilm_dir, tmp_path)
    _degrade_engine(copy)
    with pytest.raises(SelfCheckError) as caught:
        embedrt.load(copy)
    message = str(caught.value)
    measured = float(message.split("min_cosine ")[1].split(" ")[0])
    assert measured < 0.99999
    assert str(copy) in message and "missed its parity gate on this machine" in message
    assert cpu_record()["model"] in message and "Re-export the model on this machine" in message and "fp32 export" in message


def test_verify_warn_loads_a_degraded_engine_with_a_warning_and_off_skips_the_check(minilm_dir, tmp_path):
    copy = _copy(minilm_dir, tmp_path)
    _degrade_engine(copy)
    with pytest.warns(RuntimeWarning, match="missed its parity gate"):
        warned = embedrt.load(copy, verify="warn")
    assert warned.self_check["passed"] is False and warned.self_check["min_cosine"] < 0.99999
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        skipped = embedrt.load(copy, verify="off")
    assert skipped.self_check is None
    assert skipped.embed(["still runs"]).shape == (1, 384)


def test_reference_vectors_that_no_longer_match_are_refused(minilm_dir, tmp_path):
    copy = _copy(minilm_dir, tmp_path)
    inputs, vectors = read_reference(copy)
    np.savez_compressed(copy / REFERENCE_NAME, vectors=np.roll(vectors, 1, axis=0), **inputs)  # each text gets another's vector
    _rehash(copy)
    with pytest.raises(SelfCheckError, match="min_cosine"):
        embedrt.load(copy)


def test_an_unknown_verify_mode_is_refused():
    with pytest.raises(EmbedrtError, match="verify='strict' is not one of error, warn, off"):
        embedrt.load("default", verify="strict")


def test_weights_changed_in_place_at_the_same_size_are_refused_by_hash_before_any_session(minilm_dir, tmp_path):
    copy = _copy(minilm_dir, tmp_path)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1000] ^= 0xFF  # one byte of a weight: same size, still a valid graph
    (copy / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(ManifestError, match=r"model\.onnx: its sha256 .* differs .* Re-export the model"):
        embedrt.load(copy)


def test_a_swapped_tokenizer_is_refused_by_hash(minilm_dir, tmp_path):
    copy = _copy(minilm_dir, tmp_path)
    tokenizer = json.loads((copy / "tokenizer.json").read_text())
    tokenizer["model"]["vocab"]["hello"], tokenizer["model"]["vocab"]["world"] = tokenizer["model"]["vocab"]["world"], tokenizer["model"]["vocab"]["hello"]
    (copy / "tokenizer.json").write_text(json.dumps(tokenizer))
    with pytest.raises(ManifestError, match=r"tokenizer\.json: its sha256 .* differs"):
        embedrt.load(copy)
    _rehash(copy)  # recorded as if exported so: the self-check still sees 'Hello world.' go wrong
    with pytest.raises(SelfCheckError):
        embedrt.load(copy)


def test_embedrt_info_shows_the_self_check_and_exits_2_when_it_failed(minilm_dir, tmp_path, capsys):
    assert main(["info", str(minilm_dir)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["self_check"]["passed"] and shown["self_check"]["n"] >= 6
    copy = _copy(minilm_dir, tmp_path)
    _degrade_engine(copy)
    assert main(["info", str(copy)]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["self_check"]["passed"] is False
    assert "missed its parity gate on this machine" in captured.err


@pytest.mark.parametrize("model", [None, 5, ["default"]])
def test_load_names_a_model_argument_that_is_not_a_path(model):
    with pytest.raises(EmbedrtError, match="give an export dir's path, or 'default'"):
        embedrt.load(model)
