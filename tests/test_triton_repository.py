"""`embedrt triton build`: every config.pbtxt parsed with Triton's own ModelConfig protobuf, for every backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embedrt.cli import main
from embedrt.errors import EmbedrtError, ManifestError, TritonError
from embedrt.manifest import read_manifest
from embedrt.triton.configs import ServingOptions
from embedrt.triton.padding import pad_tokens, padded_length
from embedrt.triton.repository import build_repository
from triton_repos import parse_config, without_graph_pooling

model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")


def configs(repo: Path) -> dict:
    return {p.parent.name: parse_config(p) for p in sorted(repo.glob("*/config.pbtxt"))}


def test_python_repository_has_ensemble_tokenizer_and_encoder_with_manifest_batch_size(minilm_dir, tmp_path):
    repo = build_repository([minilm_dir], tmp_path / "repo", name="minilm")
    parsed = configs(repo)
    manifest = read_manifest(minilm_dir)
    assert sorted(parsed) == ["minilm", "minilm_encoder", "minilm_tokenizer"]
    encoder = parsed["minilm_encoder"]
    assert encoder.backend == "python"
    assert encoder.max_batch_size == manifest.max_batch_size
    assert [i.name for i in encoder.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert list(encoder.input[0].dims) == [-1]
    assert all(i.allow_ragged_batch for i in encoder.input)  # any lengths merge; the model re-batches by length
    assert parsed["minilm_tokenizer"].parameters["pad_together"].string_value == "0"
    assert [list(o.dims) for o in encoder.output] == [[-1, 384], [384]]
    assert encoder.instance_group[0].kind == encoder.instance_group[0].KIND_CPU
    assert list(encoder.dynamic_batching.preferred_batch_size) == [8, 16, 32, 64]
    assert encoder.parameters["embedrt_pad_multiple"].string_value == "16"
    assert encoder.parameters["ort_allow_spinning"].string_value == "0"
    assert encoder.parameters["embedrt_model_sha256"].string_value == manifest.model_file["sha256"]
    ensemble = parsed["minilm"]
    assert ensemble.platform == "ensemble"
    assert ensemble.input[0].data_type == model_config_pb2.TYPE_STRING
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == ["minilm_tokenizer", "minilm_encoder"]
    assert (repo / "minilm_encoder" / "1" / "model.py").is_file() and (repo / "minilm_encoder" / "1" / "model.onnx").is_file()
    assert (repo / "minilm_tokenizer" / "1" / "tokenizer.json").is_file()


def test_graph_without_pooling_gets_a_pooling_step(minilm_dir, tmp_path):
    plain = without_graph_pooling(minilm_dir, tmp_path / "plain")
    parsed = configs(build_repository([plain], tmp_path / "repo"))
    steps = parsed["plain"].ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["plain_tokenizer", "plain_encoder", "plain_pooling"]
    assert dict(steps[2].output_map) == {"sentence_embedding": "sentence_embedding"}
    assert parsed["plain_pooling"].parameters["pooling"].string_value == "mean"
    assert [o.name for o in parsed["plain_encoder"].output] == ["token_embeddings"]


def test_onnxruntime_backend_with_tensorrt_accelerator(minilm_dir, tmp_path):
    options = ServingOptions(backend="onnxruntime", instance_count=2, tensorrt_accelerator=True, max_batch_size=64)
    parsed = configs(build_repository([minilm_dir], tmp_path / "repo", options, name="m"))
    encoder = parsed["m_encoder"]
    assert encoder.platform == "onnxruntime_onnx" and encoder.backend == ""
    assert encoder.max_batch_size == 64
    assert (encoder.instance_group[0].count, encoder.instance_group[0].kind) == (2, encoder.instance_group[0].KIND_GPU)
    trt = encoder.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert trt.name == "tensorrt"
    assert trt.parameters["precision_mode"] == "FP16"
    assert trt.parameters["trt_profile_max_shapes"] == "input_ids:64x256,attention_mask:64x256,token_type_ids:64x256"
    assert not any(i.allow_ragged_batch for i in encoder.input)  # native backends batch equal shapes only:
    assert parsed["m_tokenizer"].parameters["pad_together"].string_value == "1"  # the tokenizer pads a batch to one length
    assert not (tmp_path / "repo" / "m_encoder" / "1" / "model.py").exists()


def test_tensorrt_backend_serves_the_plan_of_the_export_dir(minilm_dir, tmp_path):
    export = tmp_path / "withplan"
    shutil.copytree(minilm_dir, export)
    (export / "model.plan").write_bytes(b"engine bytes")  # stands in for a GPU-built engine: only the config is checked here
    parsed = configs(build_repository([export], tmp_path / "repo", ServingOptions(backend="tensorrt")))
    assert parsed["withplan_encoder"].platform == "tensorrt_plan"
    assert (tmp_path / "repo" / "withplan_encoder" / "1" / "model.plan").read_bytes() == b"engine bytes"


def test_tensorrt_backend_without_a_plan_is_refused_and_writes_nothing(minilm_dir, tmp_path):
    with pytest.raises(ManifestError, match="model.plan: missing"):
        build_repository([minilm_dir], tmp_path / "repo", ServingOptions(backend="tensorrt"))
    assert not (tmp_path / "repo").exists()


def test_image_repository_has_preprocess_and_encoder(resnet18_dir, tmp_path):
    for backend in ("python", "onnxruntime"):
        parsed = configs(build_repository([resnet18_dir], tmp_path / backend, ServingOptions(backend=backend, tensorrt_accelerator=backend == "onnxruntime"), name="rn"))
        assert sorted(parsed) == ["rn", "rn_encoder", "rn_preprocess"]
        assert list(parsed["rn_encoder"].input[0].dims) == [3, 224, 224]
        assert [s.model_name for s in parsed["rn"].ensemble_scheduling.step] == ["rn_preprocess", "rn_encoder"]
        assert parsed["rn"].output[0].name == "image_embedding"
    trt = parsed["rn_encoder"].optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert trt.parameters["trt_profile_min_shapes"] == "pixel_values:1x3x224x224"


def test_cli_build_writes_a_repository_of_text_and_image_models(minilm_dir, resnet18_dir, tmp_path, capsys):
    assert main(["triton", "build", str(minilm_dir), str(resnet18_dir), "--repository", str(tmp_path / "repo"), "--max-queue-delay-us", "500"]) == 0
    parsed = configs(tmp_path / "repo")
    assert len(parsed) == 6
    assert parsed["minilm_encoder"].dynamic_batching.max_queue_delay_microseconds == 500
    assert "wrote" in capsys.readouterr().out


def test_bad_build_requests_are_refused(minilm_dir, tmp_path):
    with pytest.raises(EmbedrtError, match="--name 'x' names one model"):
        build_repository([minilm_dir, minilm_dir], tmp_path / "r1", name="x")
    with pytest.raises(EmbedrtError, match="share the model name"):
        build_repository([minilm_dir, minilm_dir], tmp_path / "r2")
    with pytest.raises(EmbedrtError, match="model name 'a b'"):
        build_repository([minilm_dir], tmp_path / "r3", name="a b")
    with pytest.raises(EmbedrtError, match="--backend 'triton'"):
        ServingOptions(backend="triton")
    with pytest.raises(EmbedrtError, match="TensorRT accelerator"):
        ServingOptions(backend="python", tensorrt_accelerator=True)
    build_repository([minilm_dir], tmp_path / "r4")
    with pytest.raises(EmbedrtError, match="--overwrite"):
        build_repository([minilm_dir], tmp_path / "r4")
    assert main(["triton", "build", str(tmp_path / "nothing"), "--repository", str(tmp_path / "r5")]) == 2


def test_token_ids_are_padded_to_the_length_multiple_without_passing_max_length():
    assert [padded_length(n, 16, 256) for n in (1, 16, 17, 250, 256, 300)] == [16, 16, 32, 256, 256, 300]
    padded = pad_tokens({"input_ids": np.array([[101, 7, 102]]), "attention_mask": np.ones((1, 3), np.int64)}, 5, pad_token_id=9)
    assert padded["input_ids"].tolist() == [[101, 7, 102, 9, 9]]
    assert padded["attention_mask"].tolist() == [[1, 1, 1, 0, 0]]


def test_a_python_without_a_stub_is_refused_before_the_server_would_hang():
    from embedrt.triton.server import pytriton_dist, python_stub

    dist = pytriton_dist()
    assert python_stub(dist).is_file()
    with pytest.raises(TritonError, match="not 2.7; a stub of another version makes tritonserver hang"):
        python_stub(dist, "2.7")
