"""bf16 engines: the bundled model's plain graph compiled by OpenVINO in bf16, with its own gate, on a CPU with bf16 units.

On a CPU without them (Zen 3) the export and the load are refused, and these tests check the refusal instead.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import embedrt
from embedrt.errors import EmbedrtError, ExportError, ProviderError
from embedrt.export.parity import cosine_rows
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.openvino_backend import bf16_units, import_openvino, refuse_bf16
from embedrt.runtime.queue import TextQueue
from embedrt.sample_text import sample_sentences

# OpenVINO computes in bf16 where the CPU has AMX-BF16 or AVX-512 BF16: the product asks OpenVINO, and so does the branch here.
BF16_UNITS = bf16_units()


@pytest.fixture(scope="module")
def bf16_dir(minilm_dir, tmp_path_factory):
    from embedrt.export import optimize_export

    out = tmp_path_factory.mktemp("bf16") / "minilm-bf16"
    if not BF16_UNITS:
        with pytest.raises(ProviderError, match="no bf16 units"):
            optimize_export(minilm_dir, out, precision="bf16")
        assert not out.exists()
        pytest.skip("this CPU has no bf16 units (AMX or AVX-512 BF16): the bf16 export was refused, as it should be")
    return optimize_export(minilm_dir, out, precision="bf16")


@pytest.fixture(scope="module")
def bf16(bf16_dir):
    return embedrt.load(bf16_dir)


def test_bf16_export_records_its_engine_and_passes_its_gate_on_the_varied_sentences(bf16_dir):
    manifest = read_manifest(bf16_dir)
    assert (manifest.precision, manifest.provider, manifest.optimizations) == ("bf16", "openvino", ())
    assert manifest.parity["passed"] and manifest.parity["n"] >= 200
    assert manifest.parity["min_cosine"] >= 0.999 and manifest.parity["mean_cosine"] >= 0.9999
    assert manifest.parity["min_cosine"] < 0.9999999  # bf16 really ran: an fp32 engine would agree to ~1e-7


@pytest.mark.slow
def test_bf16_vectors_agree_with_sentence_transformers_on_texts_the_gate_never_saw(bf16, sentence_transformer):
    assert bf16.providers == ["OpenVINO CPU (bf16)"] and bf16.self_check["passed"]
    texts = sample_sentences(200, min_words=1, max_words=200, seed=7) + ["", "x", "東京は日本の首都です。", "🚀🔥"]
    cos = cosine_rows(sentence_transformer.encode(texts, batch_size=32), bf16.embed(texts))
    assert cos.min() >= 0.999 and cos.mean() >= 0.9999


def test_bf16_lanes_give_the_vectors_of_one_batch_at_a_time(bf16_dir, bf16):
    one = embedrt.load(bf16_dir, lanes=1, verify="off")
    assert bf16.lanes.count == 2 and one.lanes.count == 1
    texts = sample_sentences(300, seed=11, min_words=1, max_words=150)
    a, b = bf16.embed(texts), one.embed(texts)
    assert np.isfinite(a).all() and cosine_rows(a, b).min() >= 0.9999


def test_bf16_token_vectors_and_the_queue(bf16):
    texts = ["a short one", "a somewhat longer sentence about embeddings and where they are used"]
    tokens = bf16.embed_tokens(texts)
    assert [t.shape for t in tokens] == [(len(bf16.tokenize([s]).ids[0]), 384) for s in texts]
    with TextQueue(bf16) as queue:
        futures = [queue.submit([s]) for s in sample_sentences(40, seed=3)]
        got = np.concatenate([f.result(timeout=60) for f in futures])
    assert cosine_rows(got, bf16.embed(sample_sentences(40, seed=3))).min() >= 0.9999


def test_a_bf16_engine_runs_on_the_cpu_only_and_not_in_a_triton_repository(bf16_dir, tmp_path):
    with pytest.raises(ProviderError, match="built for 'openvino' and cannot run on device='cuda'"):
        embedrt.load(bf16_dir, device="cuda")
    from embedrt.triton.repository import build_repository

    with pytest.raises(EmbedrtError, match="a bf16 engine, which OpenVINO runs in-process"):
        build_repository([bf16_dir], tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_onnx_runtime_options_are_refused_by_a_bf16_engine(bf16_dir):
    with pytest.raises(EmbedrtError, match="tensorrt: ONNX Runtime options; a bf16 \\(OpenVINO\\) engine takes none"):
        embedrt.load(bf16_dir, tensorrt=None)


def test_a_bf16_export_is_made_exactly_where_openvino_lists_bf16_units(minilm_source, tmp_path):
    """Both branches on a tiny model: the bundled model's tests above need a CPU with bf16 units, this one runs anywhere."""
    from embedrt.export import export_text
    from tests.random_models import random_bert

    tiny, out = random_bert(tmp_path / "tiny", minilm_source, pooling="mean", normalize=True), tmp_path / "bf16"
    if not BF16_UNITS:
        with pytest.raises(ProviderError, match=r"this CPU \(.+\) has no bf16 units .* in f32, no faster than fp32"):
            export_text(tiny, out, precision="bf16")
        assert not out.exists()
        return
    manifest = read_manifest(export_text(tiny, out, precision="bf16"))
    assert (manifest.precision, manifest.provider, manifest.parity["passed"]) == ("bf16", "openvino", True)
    assert embedrt.load(out).providers == ["OpenVINO CPU (bf16)"]


def test_a_cpu_where_openvino_would_compute_in_f32_is_refused_by_name():
    # No such CPU here when it has bf16 units: OpenVINO's answer ("f32") is given to the check directly.
    with pytest.raises(ProviderError, match=r"this CPU \(AMD EPYC 7B13\) has no bf16 units .* in f32, no faster than fp32"):
        refuse_bf16("f32", "AMD EPYC 7B13")
    refuse_bf16("bf16", "Intel Xeon")


def test_without_openvino_installed_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # what `import openvino` does where the package is absent
    with pytest.raises(ProviderError, match=r"pip install embedrt\[openvino\]"):
        import_openvino()


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "bf16", "provider": "cuda"}, "OpenVINO runs the bf16 engine"),
    ({"precision": "int8", "provider": "openvino"}, "OpenVINO runs the bf16 engine"),
    ({"precision": "bf16", "optimize": "fuse"}, "use --optimize none"),
    ({"precision": "bf16", "modality": "image"}, "built for text encoders"),
])
def test_bf16_plans_that_cannot_work_are_refused_before_any_work(kwargs, message):
    from embedrt.export.precision import plan_engine

    with pytest.raises(ExportError, match=message):
        plan_engine(**kwargs)


def _without_bf16_units(monkeypatch) -> None:
    """On a CPU with bf16 units, OpenVINO's answer on one without ("f32") is simulated; elsewhere the refusal is real."""
    if BF16_UNITS:
        from embedrt.runtime.engines import openvino_backend

        monkeypatch.setattr(openvino_backend, "check_bf16", lambda core, compiled: refuse_bf16("f32", "a CPU without bf16 units"))


def test_the_bf16_refusal_names_the_export_dir_at_load_and_the_out_dir_at_export(bf16_dir, minilm_dir, tmp_path, monkeypatch):
    _without_bf16_units(monkeypatch)
    with pytest.raises(ProviderError, match=f"^{bf16_dir}: this CPU .* has no bf16 units"):
        embedrt.load(bf16_dir)
    from embedrt.export import optimize_export

    out = tmp_path / "refused-bf16"
    with pytest.raises(ProviderError, match=f"^--out {out}: this CPU .* has no bf16 units"):
        optimize_export(minilm_dir, out, precision="bf16")
    assert not out.exists()
