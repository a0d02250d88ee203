"""Each text precision's parity gate on real exports: fused fp32, int8 on the bundled model, fp16 for a GPU, gate misses."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

import embedrt
from embedrt.errors import ExportError, ParityError, ProviderError
from embedrt.export import export_text, optimize_export
from embedrt.export.parity import cosine_rows
from embedrt.export.quantize import WEIGHTS_7BIT
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.cpu import cpu_record, u8s8_exact
from embedrt.sample_text import sample_sentences
from tests.emulated_cpu import EMULATED_CPU
from tests.random_models import random_bert


@pytest.fixture(scope="module")
def minilm_int8_7bit_dir(minilm_dir, minilm_int8_dir, tmp_path_factory):
    """The int8 variant with 7-bit weights: what an export chooses on a CPU without VNNI (and the one made here on such a CPU)."""
    if not u8s8_exact():
        return minilm_int8_dir
    return optimize_export(minilm_dir, tmp_path_factory.mktemp("int8-7bit") / "minilm-int8-7bit", precision="int8", int8_weights="7")


@pytest.fixture(scope="module")
def tiny_bert(minilm_source, tmp_path_factory):
    return random_bert(tmp_path_factory.mktemp("tiny") / "bert", minilm_source, pooling="mean", normalize=True)


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path / "model.onnx")).graph.node}


@pytest.mark.slow
def test_int8_bundled_model_passes_min_099_and_mean_0995_against_pytorch_fp32(minilm_int8_dir, sentence_transformer):
    manifest = read_manifest(minilm_int8_dir)
    assert manifest.precision == "int8" and manifest.provider == "cpu"
    assert manifest.parity["passed"] and manifest.parity["n"] >= 200
    assert manifest.parity["min_cosine"] >= 0.99 and manifest.parity["mean_cosine"] >= 0.995
    assert "int8:dynamic_per_channel" in manifest.optimizations and "fuse:attention" in manifest.optimizations
    # Texts the gate never saw: 200 sentences of 1-200 words (some truncated at 256 tokens), plus edge cases.
    texts = sample_sentences(200, min_words=1, max_words=200, seed=7) + ["", "x", "東京は日本の首都です。", "🚀🔥"]
    cos = cosine_rows(sentence_transformer.encode(texts, batch_size=32), embedrt.TextEmbedder(minilm_int8_dir).embed(texts))
    assert cos.min() >= 0.99 and cos.mean() >= 0.995


def test_the_int8_kernel_probe_agrees_with_the_instruction_set():
    if platform.machine() != "x86_64":
        pytest.skip(f"the u8 x s8 saturation is an x86 matter; this is {platform.machine()}")
    flags = set(cpu_record()["flags"])
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        assert u8s8_exact()
    elif "avx2" in flags:
        assert not u8s8_exact()  # vpmaddubsw adds pairs of u8 x s8 products in int16 and saturates


@pytest.mark.slow
def test_int8_export_chose_its_weights_by_this_cpus_kernel_and_passes_its_self_check(minilm_int8_dir):
    manifest = read_manifest(minilm_int8_dir)
    assert manifest.machine["u8s8_exact"] is u8s8_exact()
    assert (WEIGHTS_7BIT in manifest.optimizations) is (not u8s8_exact())
    report = embedrt.load(minilm_int8_dir).self_check
    assert report["passed"] and report["min_cosine"] >= 0.99 and report["mean_cosine"] >= 0.995


@pytest.mark.slow
def test_int8_with_7bit_weights_passes_the_gate_on_this_cpu_too(minilm_int8_7bit_dir):
    manifest = read_manifest(minilm_int8_7bit_dir)
    assert WEIGHTS_7BIT in manifest.optimizations
    assert manifest.parity["min_cosine"] >= 0.99 and manifest.parity["mean_cosine"] >= 0.995


_EMULATED_LOAD = """
import json, sys, embedrt
from embedrt.runtime.engines.cpu import u8s8_exact
found = {"u8s8_exact": u8s8_exact()}
for name, path in (("auto", sys.argv[1]), ("7bit", sys.argv[2])):
    try:
        found[name] = {"self_check": embedrt.load(path).self_check}
    except embedrt.SelfCheckError as exc:
        found[name] = {"refused": str(exc)}
print(json.dumps(found, default=str))
"""


def _python_on_a_cpu_without_vnni() -> list[str] | None:
    """A Python whose u8 x s8 kernel saturates: this one where the probe says so (Zen 3), else under qemu's Haswell."""
    if not u8s8_exact():
        return [sys.executable]
    if platform.machine() == "x86_64" and shutil.which("qemu-x86_64"):
        # qemu's Haswell: AVX2, no AVX-512, no VNNI; the same onnxruntime picks its saturating u8 x s8 kernel there.
        return ["qemu-x86_64", "-cpu", EMULATED_CPU, sys.executable]
    return None


@pytest.mark.slow
def test_on_a_cpu_without_vnni_an_8bit_engine_is_refused_and_the_7bit_one_loads(minilm_int8_dir, minilm_int8_7bit_dir):
    python = _python_on_a_cpu_without_vnni()
    if python is None:
        pytest.skip("this CPU's u8 x s8 kernel is exact and emulating one that saturates needs x86_64 and qemu-user (apt-get install qemu-user)")
    run = subprocess.run(
        [*python, "-c", _EMULATED_LOAD, str(minilm_int8_dir), str(minilm_int8_7bit_dir)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert found["u8s8_exact"] is False
    assert found["7bit"]["self_check"]["passed"] and found["7bit"]["self_check"]["min_cosine"] >= 0.99
    if u8s8_exact():  # made here with 8-bit weights: on the emulated AVX2 CPU it must not load silently
        refused = found["auto"]["refused"]
        assert "missed its parity gate on this machine" in refused and "saturates" in refused
        assert float(refused.split("min_cosine ")[1].split(" ")[0]) < 0.99
    else:  # made on this very CPU, so with 7-bit weights: the same engine as the 7-bit one
        assert minilm_int8_dir == minilm_int8_7bit_dir and found["auto"] == found["7bit"]


@pytest.mark.slow
def test_int8_graph_runs_int8_kernels(minilm_int8_dir):
    ops = _ops(minilm_int8_dir)
    assert {"DynamicQuantizeLinear", "MatMulNBits"} <= ops or {"DynamicQuantizeMatMul", "MatMulNBits"} <= ops or "QAttention" in ops


@pytest.mark.slow
def test_fused_fp32_bundled_model_keeps_parity_0_99999(minilm_dir, tmp_path, sentence_transformer):
    out = optimize_export(minilm_dir, tmp_path / "fused", optimize="fuse")
    manifest = read_manifest(out)
    assert manifest.precision == "fp32" and manifest.parity["min_cosine"] >= 0.99999
    assert {"fuse:attention", "fuse:skip_layernorm", "fuse:bias_gelu"} <= set(manifest.optimizations)
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= _ops(out)
    texts = ["A man is playing a guitar.", "", "Embedding models map text to vectors."]
    assert cosine_rows(sentence_transformer.encode(texts), embedrt.TextEmbedder(out).embed(texts)).min() >= 0.99999


def test_plain_fp16_for_cuda_keeps_fp32_io_layernorm_softmax_and_pooling(tiny_bert, tmp_path):
    out = export_text(tiny_bert, tmp_path / "fp16", precision="fp16", provider="cuda", optimize="none")
    manifest = read_manifest(out)
    assert manifest.precision == "fp16" and manifest.provider == "cuda" and manifest.parity["passed"]
    model = onnx.load(str(out / "model.onnx"))
    fp32 = onnx.TensorProto.FLOAT
    assert all(t.type.tensor_type.elem_type == fp32 for t in model.graph.output)
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    # LayerNorm and Softmax read fp32: each one's input is produced by a Cast to fp32 or an fp32 op.
    cast_to = {n.output[0]: n.attribute[0].i for n in model.graph.node if n.op_type == "Cast"}
    for node in model.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax", "ReduceL2"):
            assert cast_to.get(node.input[0], fp32) == fp32, node.name


def _cpu_vectors(export_dir, texts) -> np.ndarray:
    """An engine's pooled vectors through a CPU session, as the export's gate measures a GPU engine here."""
    from embedrt.runtime.engines.onnx_backend import OnnxBackend
    from embedrt.runtime.text.tokenization import encode, load_tokenizer, pad_batch

    manifest = read_manifest(export_dir)
    backend = OnnxBackend(export_dir / "model.onnx")
    encoded = encode(load_tokenizer(export_dir, manifest.text), texts)
    inputs = pad_batch(encoded, np.arange(len(texts)), backend.input_names, manifest.text.pad_token_id)
    return backend.run(inputs, ["sentence_embedding"])["sentence_embedding"]


def test_fp16_for_cuda_is_the_fused_gpu_graph_within_the_gate_of_the_plain_one(tiny_bert, tmp_path):
    fused = export_text(tiny_bert, tmp_path / "fused", precision="fp16", provider="cuda")
    plain = export_text(tiny_bert, tmp_path / "plain", precision="fp16", provider="cuda", optimize="none")
    manifest = read_manifest(fused)
    assert manifest.parity["passed"] and manifest.optimizations[0] == "fuse:gpu" and manifest.optimizations[-1] == "fp16"
    ops = _ops(fused)
    assert {"SkipLayerNormalization"} <= ops and ops & {"Attention", "MultiHeadAttention"}
    assert not _ops(plain) & {"Attention", "MultiHeadAttention", "SkipLayerNormalization"}
    texts = sample_sentences(24, min_words=1, max_words=40, seed=5)
    floor = embedrt.export.parity.THRESHOLDS["fp16"]["min_cosine"]
    assert cosine_rows(_cpu_vectors(plain, texts), _cpu_vectors(fused, texts)).min() >= floor


def test_fp32_for_cuda_is_the_fused_gpu_graph(tiny_bert, tmp_path):
    out = export_text(tiny_bert, tmp_path / "fp32", provider="cuda")
    manifest = read_manifest(out)
    assert manifest.precision == "fp32" and manifest.provider == "cuda" and manifest.optimizations[0] == "fuse:gpu"
    assert "SkipLayerNormalization" in _ops(out) and manifest.parity["min_cosine"] >= 0.99999


def test_fp16_engine_is_refused_on_the_cpu_by_the_runtime(tiny_bert, tmp_path):
    out = export_text(tiny_bert, tmp_path / "fp16", precision="fp16", provider="cuda")
    with pytest.raises(ProviderError, match="built for 'cuda' and cannot run on device='cpu'"):
        embedrt.TextEmbedder(out)


def test_fp16_for_the_cpu_is_refused_before_any_work(tiny_bert, tmp_path):
    with pytest.raises(ExportError, match="100x slower"):
        export_text(tiny_bert, tmp_path / "fp16", precision="fp16")
    assert not (tmp_path / "fp16").exists()


def test_int8_tiny_model_gate_miss_leaves_the_previous_export_untouched(tiny_bert, tmp_path, monkeypatch):
    out = export_text(tiny_bert, tmp_path / "model")
    before = (out / "embedrt.json").read_text()
    monkeypatch.setitem(embedrt.export.parity.THRESHOLDS, "int8", {"min_cosine": 1.000001})
    with pytest.raises(ParityError, match="int8 export failed its parity gate"):
        export_text(tiny_bert, out, precision="int8", overwrite=True)
    assert (out / "embedrt.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging dir left behind


def test_a_gate_miss_into_a_new_dir_leaves_nothing_that_loads(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setitem(embedrt.export.parity.THRESHOLDS, "fp32", {"min_cosine": 1.000001})
    with pytest.raises(ParityError):
        export_text(tiny_bert, tmp_path / "fused", optimize="fuse")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("int8_weights", ["auto", "7"])
def test_int8_tiny_model_records_its_recipe_and_loads_on_cpu_only(tiny_bert, tmp_path, int8_weights):
    out = export_text(tiny_bert, tmp_path / "int8", precision="int8", int8_weights=int8_weights)
    manifest = json.loads((out / "embedrt.json").read_text())
    seven_bit = int8_weights == "7" or not u8s8_exact()  # auto: 7-bit weights where this CPU's u8 x s8 kernel saturates
    steps = ["int8:smoothquant", "int8:dynamic_per_channel"] + [WEIGHTS_7BIT] * seven_bit + ["int8:matmul_nbits_block256"]
    assert manifest["optimizations"][-len(steps):] == steps and manifest["machine"]["u8s8_exact"] is u8s8_exact()
    assert manifest["parity"]["thresholds"] == {"min_cosine": 0.99, "mean_cosine": 0.995}
    vectors = embedrt.TextEmbedder(out).embed(["hello", "world"])
    assert vectors.shape == (2, 64) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)
    with pytest.raises(ProviderError, match="built for 'cpu'"):
        embedrt.TextEmbedder(out, device="cuda")


def test_optimize_refuses_an_export_that_is_not_plain_fp32(tiny_bert, tmp_path):
    fused = export_text(tiny_bert, tmp_path / "fused", optimize="fuse")
    with pytest.raises(ExportError, match="starts from a plain fp32 export"):
        optimize_export(fused, tmp_path / "int8", precision="int8")


def test_cli_optimize_writes_the_fused_variant_and_export_refuses_fp16_for_cpu(tiny_bert, tmp_path, capsys):
    from embedrt.cli import main

    assert main(["export", "text", str(tiny_bert), "--out", str(tmp_path / "fp32")]) == 0
    assert main(["optimize", str(tmp_path / "fp32"), "--out", str(tmp_path / "fused"), "--optimize", "fuse"]) == 0
    assert read_manifest(tmp_path / "fused").optimizations[0].startswith("fuse:")
    assert main(["export", "text", str(tiny_bert), "--out", str(tmp_path / "fp16"), "--precision", "fp16"]) == 2
    assert "--provider cuda or --provider tensorrt" in capsys.readouterr().err
    assert not (tmp_path / "fp16").exists()
