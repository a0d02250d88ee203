"""ResNet precisions: fused fp32 and static int8 calibrated on scikit-image photographs, each with its own parity gate."""

from __future__ import annotations

from collections import Counter

import onnx
import onnxruntime as ort
import pytest

import embedrt
from embedrt.errors import ParityError, ProviderError
from embedrt.export import export_image, optimize_export
from embedrt.export.image.exporter import CALIBRATION_PHOTOS, PARITY_PHOTOS
from embedrt.export.quantize import WEIGHTS_7BIT
from embedrt.manifest import read_manifest
from embedrt.runtime.engines.cpu import u8s8_exact
from embedrt.runtime.engines.session_options import session_options
from tests.image_samples import photos


@pytest.fixture(scope="module")
def resnet_fp32(tmp_path_factory):
    return export_image("resnet18", tmp_path_factory.mktemp("resnet") / "fp32", random_init=True, normalize=True)


def test_int8_calibrates_on_photographs_the_parity_gate_never_sees():
    assert not set(CALIBRATION_PHOTOS) & set(PARITY_PHOTOS)


def test_static_int8_resnet_passes_its_gate_and_embeds_on_cpu(resnet_fp32, tmp_path):
    out = optimize_export(resnet_fp32, tmp_path / "int8", precision="int8")
    manifest = read_manifest(out)
    assert manifest.precision == "int8" and manifest.provider == "cpu"
    # 7-bit weights exactly where this CPU's u8 x s8 kernel saturates (x86 without VNNI)
    assert manifest.optimizations == ("int8:static_qdq_per_channel",) + (() if u8s8_exact() else (WEIGHTS_7BIT,))
    assert manifest.machine["u8s8_exact"] is u8s8_exact()
    assert manifest.parity["min_cosine"] >= 0.99 and manifest.parity["mean_cosine"] >= 0.995 and manifest.parity["n"] == len(PARITY_PHOTOS)
    ops = {n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    images = photos()[:2]
    assert embedrt.load(out).embed(images).shape == (2, 512)
    with pytest.raises(ProviderError, match="built for 'cpu'"):
        embedrt.load(out, device="cuda")


def test_static_int8_with_7bit_weights_for_cpus_without_vnni_passes_its_gate_and_self_check_here(resnet_fp32, tmp_path):
    out = optimize_export(resnet_fp32, tmp_path / "int8-7bit", precision="int8", int8_weights="7")
    manifest = read_manifest(out)
    assert manifest.optimizations == ("int8:static_qdq_per_channel", WEIGHTS_7BIT)
    assert manifest.parity["passed"] and manifest.parity["min_cosine"] >= 0.99
    report = embedrt.load(out).self_check
    assert report["passed"] and report["n"] == 3 and report["min_cosine"] >= 0.99


def test_every_int8_conv_runs_as_an_int8_kernel(resnet_fp32, tmp_path):
    # The fp32 export shares equal constants (folded BatchNorms' zero biases) between Convs; unshared before
    # quantising, each Conv fuses into QLinearConv instead of running in fp32 between Dequantize/Quantize.
    out = optimize_export(resnet_fp32, tmp_path / "int8", precision="int8")
    options = session_options(optimization="extended")
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(out / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node)
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(resnet_fp32 / "model.onnx")).graph.node)
    assert ops["QLinearConv"] == convs and ops["Conv"] == 0


def test_fused_fp32_resnet_keeps_parity_0_99999(resnet_fp32, tmp_path):
    out = optimize_export(resnet_fp32, tmp_path / "fused", optimize="fuse")
    manifest = read_manifest(out)
    assert manifest.precision == "fp32" and manifest.parity["min_cosine"] >= 0.99999
    assert manifest.optimizations == ("fuse:ort_extended",) and manifest.provider == "cpu"


def test_resnet_int8_gate_miss_writes_nothing(resnet_fp32, tmp_path, monkeypatch):
    monkeypatch.setitem(embedrt.export.parity.THRESHOLDS, "int8", {"min_cosine": 1.000001})
    with pytest.raises(ParityError, match="int8 export failed its parity gate"):
        optimize_export(resnet_fp32, tmp_path / "int8", precision="int8")
    assert list(tmp_path.iterdir()) == []
