"""The GPU path for real (`make test-gpu`, `pytest -m gpu`): fused GPU engines on CUDA, pipelining, CUDA graphs, TensorRT, the fp16 baseline.

Runs where onnxruntime-gpu offers CUDA and an NVIDIA GPU is present; elsewhere each test is skipped saying which is
missing. Models are random-weight BERTs with the bundled tokenizer (benchmarks/gpu_models.py): a GPU machine need not
have the model package.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import embedrt
from embedrt.errors import ProviderError
from embedrt.export.parity import THRESHOLDS, cosine_rows
from embedrt.runtime.engines.providers import CUDA, TENSORRT, tensorrt_library_loads
from embedrt.sample_text import sample_sentences

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gpu_models import build_model  # noqa: E402


def _missing() -> str | None:
    """Why the GPU tests cannot run here, or None."""
    if CUDA not in ort.get_available_providers():
        return f"needs onnxruntime-gpu: this onnxruntime {ort.__version__} offers {ort.get_available_providers()}"
    smi = shutil.which("nvidia-smi")
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout if smi else ""
    return None if "GPU" in listed else "needs an NVIDIA GPU: nvidia-smi lists none"


MISSING = _missing()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]
TEXTS = sample_sentences(200, min_words=1, max_words=80, seed=7)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("gpu") / "minilm-shape", "minilm-shape")


@pytest.fixture(scope="module")
def cpu_fp32(source, tmp_path_factory):
    from embedrt.export import export_text

    return export_text(source, tmp_path_factory.mktemp("gpu") / "fp32")


@pytest.fixture(scope="module")
def cuda_fp32(source, tmp_path_factory):
    from embedrt.export import export_text

    return export_text(source, tmp_path_factory.mktemp("gpu") / "fp32-cuda", provider="cuda")


@pytest.fixture(scope="module")
def cuda_fp16(source, tmp_path_factory):
    from embedrt.export import export_text

    return export_text(source, tmp_path_factory.mktemp("gpu") / "fp16-cuda", precision="fp16", provider="cuda")


def test_the_fused_fp16_engine_runs_on_cuda_within_its_gate_of_fp32_on_the_cpu(cuda_fp16, cpu_fp32):
    gpu = embedrt.TextEmbedder(cuda_fp16, device="cuda")
    assert gpu.providers[0] == CUDA and gpu.self_check["passed"] and gpu.pipeline
    assert gpu.manifest.optimizations[0] == "fuse:gpu"
    floor = THRESHOLDS["fp16"]["min_cosine"]
    assert cosine_rows(embedrt.TextEmbedder(cpu_fp32).embed(TEXTS), gpu.embed(TEXTS)).min() >= floor


def test_the_fused_fp32_engine_on_cuda_equals_fp32_on_the_cpu(cuda_fp32, cpu_fp32):
    gpu = embedrt.TextEmbedder(cuda_fp32, device="cuda")
    assert gpu.providers[0] == CUDA and gpu.self_check["passed"]
    np.testing.assert_allclose(gpu.embed(TEXTS), embedrt.TextEmbedder(cpu_fp32).embed(TEXTS), atol=2e-4)


def test_pipelined_gpu_vectors_equal_unpipelined_ones(cuda_fp32):
    pipelined = embedrt.TextEmbedder(cuda_fp32, device="cuda")
    plain = embedrt.TextEmbedder(cuda_fp32, device="cuda", pipeline=False, backend=pipelined.backend)
    np.testing.assert_allclose(pipelined.embed(TEXTS), plain.embed(TEXTS), atol=1e-5)


def test_tensorrt_runs_or_names_the_tensorrt_10_library_it_needs(cpu_fp32):
    if TENSORRT not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime-gpu has no {TENSORRT}")
    if not tensorrt_library_loads():
        with pytest.raises(ProviderError, match=r"libnvinfer\.so\.10.*tensorrt-cu13==10"):
            embedrt.TextEmbedder(cpu_fp32, device="tensorrt")
        return
    trt = embedrt.TextEmbedder(cpu_fp32, device="tensorrt")
    assert trt.providers[0] == TENSORRT
    assert cosine_rows(embedrt.TextEmbedder(cpu_fp32).embed(TEXTS[:20]), trt.embed(TEXTS[:20])).min() >= THRESHOLDS["fp16"]["min_cosine"]


def test_the_sentence_transformers_fp16_baseline_has_half_weights_on_the_gpu(source):
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    if not torch.cuda.is_available():
        pytest.skip(f"this torch ({torch.__version__}) sees no GPU")
    from embedrt.bench.engines import sentence_transformers_text

    engine = sentence_transformers_text(source, "fp16", torch.float16, device="cuda")
    assert engine.details["weights"] == "cuda torch.float16"
    assert engine.embed(TEXTS[:8], None).shape == (8, 384)


# Texts whose lengths fall in several CUDA graph buckets (16, 32, 64, 128, ...), the short query first.
ONE_BY_ONE = ["one short query", *sample_sentences(11, min_words=1, max_words=150, seed=5)]


def _batch1(embedder, texts):
    return np.vstack([embedder.embed([t]) for t in texts])


def _same_fp32_vectors(got, want):
    """Within the fp32 gate and 1e-4: a padded bucket picks other GPU kernels (TF32 GEMMs), which moved values by up
    to 1.7e-5 on an H200; a stale input or output would give another text's vector, far outside both bounds."""
    assert cosine_rows(got, want).min() >= THRESHOLDS["fp32"]["min_cosine"]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_cuda_graph_batch1_vectors_equal_the_plain_sessions_in_several_buckets(cuda_fp32):
    from embedrt.runtime.engines.cuda_graphs import bucket_for

    graphs = embedrt.TextEmbedder(cuda_fp32, device="cuda")
    plain = embedrt.TextEmbedder(cuda_fp32, device="cuda", cuda_graphs=False)
    assert graphs.backend.cuda_graphs is not None and plain.backend.cuda_graphs is None
    lengths = graphs.tokenize(ONE_BY_ONE).lengths
    assert len({bucket_for(n, graphs.max_length) for n in lengths}) >= 3
    _same_fp32_vectors(_batch1(graphs, ONE_BY_ONE), _batch1(plain, ONE_BY_ONE))
    # Replays after other texts (reversed order, each bucket reused): no stale inputs or outputs.
    _same_fp32_vectors(_batch1(graphs, ONE_BY_ONE[::-1]), _batch1(plain, ONE_BY_ONE[::-1]))
    tokens = graphs.embed_tokens([ONE_BY_ONE[3]])[0]
    assert tokens.shape[0] == lengths[3]
    # token vectors are not normalised (norms about 10 here): TF32 moved them by up to 4.3e-4 on an H200
    want = plain.embed_tokens([ONE_BY_ONE[3]])[0]
    assert cosine_rows(tokens, want).min() >= THRESHOLDS["fp32"]["min_cosine"]
    np.testing.assert_allclose(tokens, want, atol=2e-3)


def test_cuda_graph_fp16_batch1_vectors_are_within_the_fp16_gate_of_the_plain_session(cuda_fp16):
    graphs = embedrt.TextEmbedder(cuda_fp16, device="cuda")
    plain = embedrt.TextEmbedder(cuda_fp16, device="cuda", cuda_graphs=False)
    assert graphs.backend.cuda_graphs is not None
    assert cosine_rows(_batch1(plain, ONE_BY_ONE), _batch1(graphs, ONE_BY_ONE)).min() >= THRESHOLDS["fp16"]["min_cosine"]


def test_cuda_graph_replays_from_two_threads_at_once_are_each_right(cuda_fp32):
    graphs = embedrt.TextEmbedder(cuda_fp32, device="cuda")
    texts = sample_sentences(60, min_words=1, max_words=40, seed=9)
    want = embedrt.TextEmbedder(cuda_fp32, device="cuda", cuda_graphs=False).embed(texts)
    got: dict[int, np.ndarray] = {}

    def worker(rows):
        for i in rows:
            got[i] = graphs.embed([texts[i]])[0]

    threads = [threading.Thread(target=worker, args=(range(k, len(texts), 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _same_fp32_vectors(np.vstack([got[i] for i in range(len(texts))]), want)

