"""Device names to execution providers, and the refusal of a provider that is not really active."""

from __future__ import annotations

import onnxruntime as ort
import pytest

import embedrt
from embedrt.errors import ProviderError
from embedrt.runtime.engines.providers import (
    CPU,
    CUDA,
    TENSORRT,
    TensorRTOptions,
    check_active,
    check_available,
    plan_providers,
    profile_shapes,
    tensorrt_library_loads,
)


def test_cpu_device_uses_only_the_cpu_provider():
    plan = plan_providers("cpu")
    assert plan.providers == [CPU] and plan.required == CPU


def test_cuda_device_puts_cuda_first_with_its_options_and_cpu_last():
    plan = plan_providers("cuda", device_id=1)
    name, options = plan.providers[0]
    assert name == CUDA and options["device_id"] == 1
    assert plan.providers[-1] == CPU and plan.required == CUDA


def test_tensorrt_device_carries_fp16_cache_and_profile_options(tmp_path):
    shapes = profile_shapes(["input_ids", "attention_mask"], max_batch=64, max_length=256)
    trt = TensorRTOptions(fp16=True, cache_dir=tmp_path, min_shapes=shapes[0], opt_shapes=shapes[1], max_shapes=shapes[2])
    plan = plan_providers("tensorrt", tensorrt=trt)
    name, options = plan.providers[0]
    assert name == TENSORRT and plan.required == TENSORRT
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] is True and options["trt_engine_cache_path"] == str(tmp_path)
    assert options["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1"
    assert options["trt_profile_opt_shapes"] == "input_ids:8x128,attention_mask:8x128"
    assert options["trt_profile_max_shapes"] == "input_ids:64x256,attention_mask:64x256"
    assert [p if isinstance(p, str) else p[0] for p in plan.providers] == [TENSORRT, CUDA, CPU]


def test_an_unknown_device_is_refused():
    with pytest.raises(ProviderError, match="device='gpu'"):
        plan_providers("gpu")


def test_a_provider_missing_from_onnxruntime_is_an_error_that_says_what_to_install():
    with pytest.raises(ProviderError, match="onnxruntime-gpu"):
        check_available(plan_providers("cuda"), [CPU])


def test_the_cuda_hint_names_the_libraries_onnxruntime_gpu_1_31_needs():
    with pytest.raises(ProviderError, match="CUDA 13 and cuDNN 9"):
        check_available(plan_providers("cuda"), [CPU])


def test_both_onnxruntime_builds_installed_is_named_with_the_command_that_fixes_it(monkeypatch):
    # Both distributions are not installed in this venv: their versions as importlib.metadata would read them.
    versions = {"onnxruntime": "1.32.0", "onnxruntime-gpu": "1.31.1"}
    monkeypatch.setattr(embedrt.runtime.engines.providers.metadata, "version", versions.__getitem__)
    with pytest.raises(ProviderError) as err:
        check_available(plan_providers("cuda"), [CPU])
    assert "both onnxruntime 1.32.0 and onnxruntime-gpu 1.31.1 are installed" in str(err.value)
    assert "`pip install --force-reinstall --no-deps onnxruntime-gpu==1.31.1`" in str(err.value)


@pytest.mark.skipif(tensorrt_library_loads(), reason="TensorRT 10 is installed here")
def test_an_inactive_tensorrt_names_the_missing_tensorrt_10_library_and_its_package():
    with pytest.raises(ProviderError) as err:
        check_active(plan_providers("tensorrt"), [CUDA, CPU])
    assert "libnvinfer.so.10" in str(err.value) and "pip install 'tensorrt-cu13==10.*'" in str(err.value)
    assert "driver" not in str(err.value)


def test_a_listed_but_inactive_provider_is_refused_not_silently_run_on_cpu():
    # onnxruntime-gpu on a machine without a GPU lists CUDA, then the session runs on the CPU only.
    with pytest.raises(ProviderError, match="did not activate CUDAExecutionProvider"):
        check_active(plan_providers("cuda"), [CPU])


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime has CUDA")
def test_asking_the_real_runtime_for_cuda_on_this_machine_fails_loudly(minilm_dir):
    with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
        embedrt.TextEmbedder(minilm_dir, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(CUDA not in ort.get_available_providers(), reason="needs onnxruntime-gpu and an NVIDIA GPU; none here")
def test_cuda_embeddings_equal_cpu_embeddings(minilm_dir, minilm):
    import numpy as np

    gpu = embedrt.TextEmbedder(minilm_dir, device="cuda")
    assert gpu.providers[0] == CUDA
    texts = ["hello", "a longer sentence for the GPU"]
    np.testing.assert_allclose(gpu.embed(texts), minilm.embed(texts), atol=1e-4)
