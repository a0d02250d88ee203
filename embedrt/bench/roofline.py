"""The machine's GEMM peak, measured in the same run as the models, and the models' cost in FLOPs.

The achieved FLOP/s of a model divided by the fp32 (or int8) GEMM peak says how much of the
machine it uses: near 1, only less work (a lower precision, less padding) can make it faster.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

# 2 x multiply-accumulates per 224x224 image of the torchvision ResNets (ResNet-50: 4.1 GMAC).
RESNET_GFLOP = {"resnet18": 2 * 1.82, "resnet34": 2 * 3.67, "resnet50": 2 * 4.11, "resnet101": 2 * 7.83, "resnet152": 2 * 11.56}


def text_flops_per_token(config: dict[str, Any], seq_len: float) -> float:
    """Forward FLOPs per token of a BERT-family encoder: the dense layers plus attention over `seq_len`.

    all-MiniLM-L6-v2 (6 layers, hidden 384, intermediate 1536): about 21.2 MFLOP + 9.2 kFLOP x seq_len.
    """
    layers = int(config.get("num_hidden_layers") or config.get("n_layers"))
    hidden = int(config.get("hidden_size") or config.get("dim"))
    inner = int(config.get("intermediate_size") or config.get("hidden_dim") or 4 * hidden)
    dense = 2 * (4 * hidden * hidden + 2 * hidden * inner)  # Q, K, V, output projections + the two FFN layers
    attention = 2 * 2 * seq_len * hidden  # scores and the weighted sum
    return float(layers * (dense + attention))


def _best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: thread pools, packing buffers
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _numpy_fp32(n: int, repeats: int) -> float:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / _best_seconds(lambda: a @ b, repeats)


def _ort_matmul(n: int, repeats: int, int8: bool) -> float:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from embedrt.runtime.session_options import session_options

    if int8:
        inputs = [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]), helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])]
        node = helper.make_node("MatMulInteger", ["a", "b"], ["c"])
        out = helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])
    else:
        inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]), helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])]
        node = helper.make_node("MatMul", ["a", "b"], ["c"])
        out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    model = helper.make_model(helper.make_graph([node], "gemm", inputs, [out]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    session = ort.InferenceSession(model.SerializeToString(), sess_options=session_options(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    if int8:
        feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    else:
        feed = {"a": rng.standard_normal((n, n), dtype=np.float32), "b": rng.standard_normal((n, n), dtype=np.float32)}
    return 2 * n**3 / _best_seconds(lambda: session.run(None, feed), repeats)


def measure_gemm_peak(n: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Best-of-`repeats` square GEMM throughput: fp32 (numpy BLAS and ONNX Runtime, the higher counts) and
    int8 (ONNX Runtime MatMulInteger, u8 x s8 -> s32, the kernel dynamic int8 models run)."""
    found: dict[str, Any] = {"gemm_size": n, "repeats": repeats}
    found["fp32_numpy_gflops"] = round(_numpy_fp32(n, repeats) / 1e9, 1)
    try:
        found["fp32_onnxruntime_gflops"] = round(_ort_matmul(n, repeats, int8=False) / 1e9, 1)
        found["int8_onnxruntime_gops"] = round(_ort_matmul(n, repeats, int8=True) / 1e9, 1)
    except ImportError:
        found["int8_unavailable"] = "the onnx package is not installed (pip install 'embedrt[export]'): ONNX Runtime GEMMs not measured"
    found["fp32_peak_gflops"] = max(found["fp32_numpy_gflops"], found.get("fp32_onnxruntime_gflops", 0.0))
    if "int8_onnxruntime_gops" in found:
        found["int8_peak_gops"] = found["int8_onnxruntime_gops"]
    return found


def measure_gpu_gemm_peak(n: int = 4096, repeats: int = 5) -> dict[str, Any]:
    """fp32 and fp16 GEMM on the first CUDA GPU through torch (the engines there are held against these)."""
    import torch

    found: dict[str, Any] = {}
    for name, dtype in (("gpu_fp32_peak_gflops", torch.float32), ("gpu_fp16_peak_gflops", torch.float16)):
        a = torch.randn((n, n), device="cuda", dtype=dtype)
        b = torch.randn((n, n), device="cuda", dtype=dtype)

        def run() -> None:
            a @ b
            torch.cuda.synchronize()

        found[name] = round(2 * n**3 / _best_seconds(run, repeats) / 1e9, 1)
    return found


def best_of(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The higher of two measurements of each peak (the machine can do at least that)."""
    best = dict(first)
    for key, value in second.items():
        if key.endswith(("_gflops", "_gops")):
            best[key] = max(value, first.get(key, 0.0))
    best["measured"] = "at the start and at the end of the run; the higher of the two"
    return best


def peak_for(roofline: dict[str, Any], precision: str, on_gpu: bool = False) -> tuple[float | None, str]:
    """(GFLOP/s, which peak) that a model of `precision` should be held against."""
    if on_gpu:
        half = precision in ("fp16", "bf16") and roofline.get("gpu_fp16_peak_gflops")
        return (roofline["gpu_fp16_peak_gflops"], "GPU fp16") if half else (roofline.get("gpu_fp32_peak_gflops"), "GPU fp32")
    if precision.startswith("int8") and roofline.get("int8_peak_gops"):
        return roofline["int8_peak_gops"], "int8"
    return roofline.get("fp32_peak_gflops"), "fp32"
