"""The machine's GEMM peak, measured in the same run as the models, and the models' cost in FLOPs.

The achieved FLOP/s of a model divided by the fp32 (or int8) GEMM peak says how much of the
machine it uses: near 1, only less work (a lower precision, less padding) can make it faster.

A peak is only worth dividing by if it is the machine's, not the measurement's: ONNX Runtime's GEMMs
run with B a constant initializer (prepacked once, as in a real model), after several warm-ups, best of
N with the spread kept; numpy's figure names the BLAS kernel it ran (OPENBLAS_CORETYPE=Haswell makes
OpenBLAS run its AVX2 kernel on an AVX-512 CPU, half the peak); and every figure says how many cores
other processes used while it was measured. The int8 peak is measured the way dynamic int8 engines run:
DynamicQuantizeLinear + MatMulInteger + scale, which ONNX Runtime fuses into DynamicQuantizeMatMul, with
the weights' width an export picks on this CPU: 7 bits where the u8 x s8 kernel saturates (no VNNI), as there
8-bit weights would measure a kernel that computes the wrong product.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedrt.errors import EmbedrtError

# 2 x multiply-accumulates per 224x224 image of the torchvision ResNets (ResNet-50: 4.1 GMAC).
RESNET_GFLOP = {"resnet18": 2 * 1.82, "resnet34": 2 * 3.67, "resnet50": 2 * 4.11, "resnet101": 2 * 7.83, "resnet152": 2 * 11.56}

WARMUPS = 3  # thread pools spun up, packing buffers allocated, clocks out of their idle state
MIN_SECONDS = 0.5  # /proc/stat counts CPU time in 10 ms ticks: a shorter window cannot tell a neighbour from rounding
BUSY_CORES = 0.25  # other processes using more than this many cores during a GEMM: its figure is understated
# Environment variables that change which kernel or how many threads a GEMM gets.
KERNEL_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
GEMM_KINDS = ("fp32", "int8_dynamic", "int8_kernel")
# |int8 weight| at most: 8 bits, or 7 bits as ONNX Runtime's reduce_range quantises them (its int8 range -64..64).
INT8_WEIGHT_MAX = {8: 127, 7: 64}


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


# -- measuring one GEMM -------------------------------------------------------------------------------
def _busy_seconds() -> tuple[float, float] | None:
    """(CPU seconds all processes spent busy, seconds stolen by the hypervisor) since boot, from /proc/stat."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    steal = ticks[7] if len(ticks) > 7 else 0
    return (user + nice + system + irq + softirq) / hz, steal / hz


def timed_runs(fn: Callable[[], Any], flops: float, repeats: int, warmups: int = WARMUPS) -> dict[str, Any]:
    """G(FL)OP/s of at least `repeats` timed calls (and MIN_SECONDS) after `warmups` untimed ones: best, median,
    worst, and the cores other processes kept busy meanwhile (this process's CPU time subtracted from the machine's)."""
    for _ in range(warmups):
        fn()
    busy0, own0, wall0 = _busy_seconds(), time.process_time(), time.perf_counter()
    rates: list[float] = []
    while len(rates) < repeats or time.perf_counter() - wall0 < MIN_SECONDS:
        start = time.perf_counter()
        fn()
        rates.append(flops / (time.perf_counter() - start) / 1e9)
    busy1, own1, wall = _busy_seconds(), time.process_time(), time.perf_counter() - wall0
    found = {"runs": len(rates), "best": round(max(rates), 1), "median": round(statistics.median(rates), 1), "worst": round(min(rates), 1),
             "spread_pct": round(100 * (max(rates) - min(rates)) / max(rates), 1)}
    if busy0 is not None and busy1 is not None:
        found["other_processes_cores"] = round(max(0.0, (busy1[0] - busy0[0]) - (own1 - own0)) / wall, 2)
        found["stolen_cores"] = round((busy1[1] - busy0[1]) / wall, 2)
    return found


def int8_weight_bits() -> int:
    """The int8 weight width this CPU's engines get: 7 where its u8 x s8 kernel saturates (what export's "auto" picks), else 8."""
    from embedrt.runtime.engines.cpu import u8s8_exact

    return 8 if u8s8_exact() else 7


def gemm_model(n: int, kind: str):
    """An n x n x n GEMM as ONNX with A the input and B a constant initializer (prepacked once, as a model's weight).

    fp32: MatMul. int8_dynamic: what ONNX Runtime's dynamic quantiser writes for a per-channel MatMul
    (DynamicQuantizeLinear on A, MatMulInteger with int8 B, Cast, the two scales), fused by the session into
    DynamicQuantizeMatMul. int8_kernel: MatMulInteger on u8 A and s8 B alone (the GEMM kernel's own speed).
    int8 B is as wide as this CPU's engines' weights (int8_weight_bits).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = INT8_WEIGHT_MAX[int8_weight_bits()]
    if kind == "fp32":
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
        nodes = [helper.make_node("MatMul", ["a", "b"], ["c"])]
        inits = [numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "b")]
        out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    elif kind == "int8_dynamic":
        a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n])
        nodes = [
            helper.make_node("DynamicQuantizeLinear", ["a"], ["a_q", "a_scale", "a_zero"]),
            helper.make_node("MatMulInteger", ["a_q", "b", "a_zero", "b_zero"], ["c_int"]),
            helper.make_node("Cast", ["c_int"], ["c_cast"], to=TensorProto.FLOAT),
            helper.make_node("Mul", ["a_scale", "b_scale"], ["c_scale"]),
            helper.make_node("Mul", ["c_cast", "c_scale"], ["c"]),
        ]
        inits = [numpy_helper.from_array(rng.integers(-w, w + 1, (n, n), dtype=np.int8), "b"),
                 numpy_helper.from_array(np.zeros(n, dtype=np.int8), "b_zero"),
                 numpy_helper.from_array(np.full(n, 0.01, dtype=np.float32), "b_scale")]
        out = helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])
    elif kind == "int8_kernel":
        a = helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n])
        nodes = [helper.make_node("MatMulInteger", ["a", "b"], ["c"])]
        inits = [numpy_helper.from_array(rng.integers(-w, w + 1, (n, n), dtype=np.int8), "b")]
        out = helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])
    else:
        raise ValueError(f"kind={kind!r} is not one of {GEMM_KINDS}")
    model = helper.make_model(helper.make_graph(nodes, f"gemm_{kind}", [a], [out], inits), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = min(model.ir_version, 9)
    return model


def gemm_input(n: int, kind: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    if kind == "int8_kernel":
        return {"a": rng.integers(0, 256, (n, n), dtype=np.uint8)}
    return {"a": rng.standard_normal((n, n), dtype=np.float32)}


def gemm_session(n: int, kind: str, optimized_path: str | os.PathLike | None = None):
    """The CPU session embedrt's engines get (its session options: all graph optimisations, a thread per core)."""
    import onnxruntime as ort

    from embedrt.runtime.engines.session_options import session_options

    options = session_options()
    if optimized_path is not None:
        options.optimized_model_filepath = str(optimized_path)  # to see which kernels the fusions chose
    return ort.InferenceSession(gemm_model(n, kind).SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])


def _ort_gemm(n: int, repeats: int, kind: str) -> dict[str, Any]:
    session, feed = gemm_session(n, kind), gemm_input(n, kind)
    return timed_runs(lambda: session.run(None, feed), 2 * n**3, repeats)


def _openvino_bf16(n: int, repeats: int) -> dict[str, Any]:
    """The fp32 MatMul compiled by OpenVINO in bf16, as embedrt's bf16 engines are (AMX or AVX-512 BF16)."""
    from embedrt.runtime.engines.openvino_backend import compile_bf16, import_openvino

    compiled = compile_bf16(import_openvino().Core().read_model(gemm_model(n, "fp32").SerializeToString(), b""))
    request, feed = compiled.create_infer_request(), gemm_input(n, "fp32")
    return timed_runs(lambda: request.infer(feed), 2 * n**3, repeats)


def _numpy_fp32(n: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    return timed_runs(lambda: a @ b, 2 * n**3, repeats)


def blas_kernel() -> dict[str, Any]:
    """numpy's BLAS: library, version, the kernel it chose for this CPU (e.g. SkylakeX, Haswell, Zen) and its threads."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"unknown": "threadpoolctl is not installed (pip install threadpoolctl): numpy's BLAS kernel not recorded"}
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
    return {"unknown": "numpy reports no BLAS library"}


# -- the peak -------------------------------------------------------------------------------------------
def measure_gemm_peak(n: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """Square GEMM throughput, best of `repeats` after warm-ups: fp32 (numpy's BLAS and ONNX Runtime, the higher
    counts) and int8 (ONNX Runtime, as dynamic int8 engines run it, and the bare u8 x s8 kernel); with the
    settings that choose the kernels and the cores other processes used while each was measured."""
    found: dict[str, Any] = {"gemm_size": n, "repeats": repeats, "warmups": WARMUPS, "b_operand": "initializer (prepacked)",
                             "blas": blas_kernel(), "env": {k: os.environ[k] for k in KERNEL_ENV if k in os.environ}}
    runs = {"fp32_numpy": _numpy_fp32(n, repeats)}
    try:
        runs["fp32_onnxruntime"] = _ort_gemm(n, repeats, "fp32")
        runs["int8_dynamic_onnxruntime"] = _ort_gemm(n, repeats, "int8_dynamic")
        runs["int8_kernel_onnxruntime"] = _ort_gemm(n, repeats, "int8_kernel")
        found["int8_weight_bits"] = int8_weight_bits()
    except ImportError:
        found["int8_unavailable"] = "the onnx package is not installed (pip install 'embedrt[export]'): ONNX Runtime GEMMs not measured"
    try:
        runs["bf16_openvino"] = _openvino_bf16(n, repeats)
    except (ImportError, EmbedrtError) as exc:  # no onnx or OpenVINO, or no bf16 units: bf16 engines are not made here either
        found["bf16_unavailable"] = str(exc)
    found["runs"] = runs
    for name, run in runs.items():
        found[f"{name}_{'gops' if name.startswith('int8') else 'gflops'}"] = run["best"]
    _derive(found)
    return found


def _derive(found: dict[str, Any]) -> None:
    """The peaks (the best of what was measured) and the warning a busy measurement deserves."""
    found["fp32_peak_gflops"] = max(found["fp32_numpy_gflops"], found.get("fp32_onnxruntime_gflops", 0.0))
    if "int8_dynamic_onnxruntime_gops" in found:
        found["int8_peak_gops"] = found["int8_dynamic_onnxruntime_gops"]
    if "bf16_openvino_gflops" in found:
        found["bf16_peak_gflops"] = found["bf16_openvino_gflops"]
    busy = {name: run["other_processes_cores"] for name, run in found["runs"].items() if run.get("other_processes_cores", 0) > BUSY_CORES}
    if busy:
        found["busy"] = {name: f"other processes used {cores} cores while it ran: understated" for name, cores in busy.items()}
    else:
        found.pop("busy", None)


def measure_gpu_gemm_peak(n: int = 8192, repeats: int = 5) -> dict[str, Any]:
    """fp32 and fp16 GEMM on the first CUDA GPU through torch (the engines there are held against these), and its name.

    8192: a 4096 fp16 GEMM leaves an H100-class GPU short of its peak (a few microseconds of launch per ms of math).
    """
    import torch

    found: dict[str, Any] = {"gpu_name": torch.cuda.get_device_name(0)}
    for name, dtype in (("gpu_fp32_peak_gflops", torch.float32), ("gpu_fp16_peak_gflops", torch.float16)):
        a = torch.randn((n, n), device="cuda", dtype=dtype)
        b = torch.randn((n, n), device="cuda", dtype=dtype)

        def run() -> None:
            a @ b
            torch.cuda.synchronize()

        found[name] = timed_runs(run, 2 * n**3, repeats)["best"]
    return found


def best_of(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """The higher of two measurements of each peak (the machine can do at least that); `runs` keeps the
    measurement each figure came from, marked with when it was taken."""
    best = dict(first)
    for key, value in second.items():
        if key.endswith(("_gflops", "_gops")):
            best[key] = max(value, first.get(key, 0.0))
    runs = {}
    for when, document in (("start", first), ("end", second)):
        for name, run in document.get("runs", {}).items():
            if name not in runs or run["best"] > runs[name]["best"]:
                runs[name] = {**run, "when": when}
    if runs:
        best["runs"] = runs
        _derive(best)
    best["measured"] = "at the start and at the end of the run; the higher of the two"
    return best


def peak_for(roofline: dict[str, Any], precision: str, on_gpu: bool = False) -> tuple[float | None, str]:
    """(GFLOP/s, which peak) that a model of `precision` should be held against."""
    if on_gpu:
        half = precision in ("fp16", "bf16") and roofline.get("gpu_fp16_peak_gflops")
        return (roofline["gpu_fp16_peak_gflops"], "GPU fp16") if half else (roofline.get("gpu_fp32_peak_gflops"), "GPU fp32")
    if precision.startswith("int8") and roofline.get("int8_peak_gops"):
        return roofline["int8_peak_gops"], "int8"
    if precision == "bf16" and roofline.get("bf16_peak_gflops"):
        return roofline["bf16_peak_gflops"], "bf16"
    return roofline.get("fp32_peak_gflops"), "fp32"
