"""Precision plans, TensorRT configuration (profiles, cache, warm-up, .plan build) and the built-for-provider refusal.

No GPU here: the TensorRT and CUDA paths are checked through their configuration and their errors; the
hardware test skips with the reason.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import onnxruntime as ort
import pytest

from embedrt.errors import ExportError, ProviderError
from embedrt.export.precision import EnginePlan, plan_engine
from embedrt.manifest import ImagePreprocessing, Manifest, TensorSpec, TextPreprocessing
from embedrt.runtime.engines.onnx_backend import OnnxBackend
from embedrt.runtime.engines.providers import TENSORRT, check_built_for, plan_providers, profile_dims, tensorrt_options_for
from embedrt.runtime.engines.warm_up import warm_up_inputs


def _text_manifest(max_batch=64, max_length=256) -> Manifest:
    ids = TensorSpec("input_ids", "int64", ("batch", "sequence"))
    mask = TensorSpec("attention_mask", "int64", ("batch", "sequence"))
    return Manifest(modality="text", dim=384, inputs=(ids, mask), outputs=(TensorSpec("sentence_embedding", "float32", ("batch", 384)),),
                    pooling="mean", normalize=True, pooled_in_graph=True, text=TextPreprocessing(max_length=max_length), max_batch_size=max_batch)


def _image_manifest() -> Manifest:
    return Manifest(modality="image", dim=512, inputs=(TensorSpec("pixel_values", "float32", ("batch", 3, 224, 224)),),
                    outputs=(TensorSpec("image_embedding", "float32", ("batch", 512)),), pooling="none", normalize=False,
                    pooled_in_graph=True, image=ImagePreprocessing(resize=256, crop=224, mean=(0.5,) * 3, std=(0.5,) * 3), max_batch_size=32)


def test_default_plans_per_precision_and_modality():
    assert plan_engine() == EnginePlan("fp32", "none", "any")
    assert plan_engine("int8") == EnginePlan("int8", "fuse", "cpu")
    assert plan_engine("int8", modality="image") == EnginePlan("int8", "none", "cpu")
    assert plan_engine("fp32", "fuse", modality="image") == EnginePlan("fp32", "fuse", "cpu")
    assert plan_engine("fp32", "fuse") == EnginePlan("fp32", "fuse", "any")
    assert plan_engine("fp16", provider="tensorrt") == EnginePlan("fp16", "none", "tensorrt")
    # A text engine for CUDA is the fused transformer graph for GPU, in fp16 and fp32; TensorRT and images keep the plain one.
    assert plan_engine("fp16", provider="cuda") == EnginePlan("fp16", "fuse", "cuda")
    assert plan_engine("fp32", provider="cuda") == EnginePlan("fp32", "fuse", "cuda")
    assert plan_engine("fp16", "none", "cuda") == EnginePlan("fp16", "none", "cuda")
    assert plan_engine("fp16", provider="cuda", modality="image") == EnginePlan("fp16", "none", "cuda")
    assert plan_engine("bf16") == plan_engine("bf16", provider="openvino") == EnginePlan("bf16", "none", "openvino")


@pytest.mark.cpu_dependent
def test_auto_int8_weights_are_7bit_exactly_where_this_cpus_u8s8_kernel_saturates():
    from embedrt.runtime.engines.cpu import u8s8_exact

    assert plan_engine("int8").reduce_range is (not u8s8_exact())
    assert plan_engine("int8", modality="image").reduce_range is (not u8s8_exact())
    assert plan_engine("int8", int8_weights="7").reduce_range and not plan_engine("int8", int8_weights="8").reduce_range


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp16"}, "--provider cuda or --provider tensorrt"),
    ({"precision": "fp16", "provider": "cpu"}, "100x slower"),
    ({"precision": "fp16"}, r"For the CPU keep fp32 \(the default\), or int8 on a CPU with AVX-512 VNNI"),
    ({"precision": "int8", "provider": "cuda"}, "CPU int8 kernels"),
    ({"precision": "bf8"}, "--precision 'bf8' is not one of fp32, int8, fp16, bf16"),
    ({"optimize": "O3"}, "--optimize 'O3'"),
    ({"precision": "fp16", "provider": "tensorrt", "optimize": "fuse"}, "TensorRT builds its own fused kernels.*use --optimize none"),
    ({"provider": "tensorrt", "optimize": "fuse"}, "cannot run ONNX Runtime's fused ops"),
    ({"precision": "fp16", "provider": "cuda", "optimize": "fuse", "modality": "image"}, "image graphs are fused by a CPU session"),
])
def test_trap_combinations_are_refused_with_the_option_named(kwargs, message):
    with pytest.raises(ExportError, match=message):
        plan_engine(**kwargs)


def test_text_profile_spans_one_token_to_the_manifest_limits():
    dims = profile_dims(_text_manifest(max_batch=64, max_length=256))
    assert dims["input_ids"] == ((1, 1), (8, 128), (64, 256))
    assert dims.keys() == {"input_ids", "attention_mask"}


def test_image_profile_keeps_channels_and_crop_fixed():
    assert profile_dims(_image_manifest(), max_batch=16)["pixel_values"] == ((1, 3, 224, 224), (8, 3, 224, 224), (16, 3, 224, 224))


def test_tensorrt_provider_options_come_from_the_manifest_with_fp16_and_a_cache(tmp_path):
    options = tensorrt_options_for(_text_manifest(max_batch=32, max_length=128), tmp_path / "cache").provider_options()
    assert options["trt_fp16_enable"] is True
    assert options["trt_engine_cache_enable"] is True and options["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert options["trt_timing_cache_path"] == str(tmp_path / "cache")
    assert options["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1"
    assert options["trt_profile_opt_shapes"] == "input_ids:8x128,attention_mask:8x128"
    assert options["trt_profile_max_shapes"] == "input_ids:32x128,attention_mask:32x128"
    name, passed = plan_providers("tensorrt", tensorrt=tensorrt_options_for(_text_manifest(), tmp_path)).providers[0]
    assert name == TENSORRT and passed["trt_profile_max_shapes"] == "input_ids:64x256,attention_mask:64x256"


def test_warm_up_feeds_cover_min_opt_and_max_shapes_with_manifest_dtypes():
    feeds = warm_up_inputs(_text_manifest(max_batch=64, max_length=256))
    assert [f["input_ids"].shape for f in feeds] == [(1, 1), (8, 128), (64, 256)]
    assert all(f["attention_mask"].dtype == np.int64 for f in feeds)
    image = warm_up_inputs(_image_manifest(), max_batch=4)
    assert [f["pixel_values"].shape for f in image] == [(1, 3, 224, 224), (4, 3, 224, 224)]  # opt == max: built once
    assert image[0]["pixel_values"].dtype == np.float32


@pytest.mark.parametrize("built_for, device, ok", [
    ("any", "cpu", True), ("any", "tensorrt", True), ("cpu", "cpu", True), ("cpu", "cuda", False),
    ("cuda", "cpu", False), ("cuda", "tensorrt", True), ("tensorrt", "cuda", False), ("tensorrt", "tensorrt", True),
    ("openvino", "cpu", True), ("openvino", "cuda", False),
])
def test_an_engine_runs_only_on_devices_it_was_built_for(built_for, device, ok):
    if ok:
        check_built_for(built_for, device, "embedrt.json")
    else:
        with pytest.raises(ProviderError, match=f"built for {built_for!r} and cannot run on device={device!r}"):
            check_built_for(built_for, device, "embedrt.json")


def test_the_runtime_refuses_a_tensorrt_engine_on_the_cpu_before_loading_it(minilm_dir, tmp_path):
    import dataclasses
    import shutil

    from embedrt.manifest import read_manifest, write_manifest

    copy = shutil.copytree(minilm_dir, tmp_path / "trt")
    write_manifest(copy, dataclasses.replace(read_manifest(copy), provider="tensorrt"))
    with pytest.raises(ProviderError, match="built for 'tensorrt'.*device='cpu'"):
        OnnxBackend.for_export(copy, read_manifest(copy))


@pytest.mark.skipif(TENSORRT in ort.get_available_providers(), reason="this onnxruntime has TensorRT")
def test_asking_for_tensorrt_without_it_says_what_to_install(minilm_dir):
    import embedrt

    with pytest.raises(ProviderError, match="TensorRT"):
        embedrt.TextEmbedder(minilm_dir, device="tensorrt")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="the tensorrt package is installed")
def test_plan_build_without_the_tensorrt_package_is_a_clear_error(minilm_dir, tmp_path):
    from embedrt.export.tensorrt_plan import build_tensorrt_plan

    with pytest.raises(ExportError, match=r"pip install 'tensorrt-cu13==10\.\*'"):
        build_tensorrt_plan(minilm_dir, tmp_path / "model.plan")
    assert not (tmp_path / "model.plan").exists()


@pytest.mark.gpu
@pytest.mark.skipif(TENSORRT not in ort.get_available_providers(), reason="needs onnxruntime-gpu with TensorRT and an NVIDIA GPU; none here")
def test_tensorrt_engine_is_built_at_load_and_cached(minilm_dir, minilm):
    import embedrt

    trt = embedrt.TextEmbedder(minilm_dir, device="tensorrt")
    assert trt.providers[0] == TENSORRT
    assert any((minilm_dir / "tensorrt-cache").iterdir())
    texts = ["hello", "a longer sentence for the GPU"]
    np.testing.assert_allclose(trt.embed(texts), minilm.embed(texts), atol=5e-3)
