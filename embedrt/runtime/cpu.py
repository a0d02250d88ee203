"""The CPU an engine runs on: what a manifest records of it, and the one fact int8 accuracy depends on.

ONNX Runtime's u8 x s8 int8 GEMM adds pairs of products in int16 (vpmaddubsw) on x86 CPUs without
VNNI, and saturates there: an int8 text engine with 8-bit weights that passes its gate on an AVX-512
VNNI machine drops to a min cosine of about 0.92 on a Zen 3 (AVX2 only). ONNX Runtime's quantization
docs advise 7-bit weights (reduce_range) on such CPUs. The kernel itself is asked, not the flags.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

import numpy as np

# Flags that decide which int8 kernels ONNX Runtime picks; recorded so that figures and engines name their CPU.
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
_PROBE_K = 64  # long enough for the packed GEMM kernel, not a scalar tail


@functools.lru_cache(maxsize=1)
def u8s8_exact() -> bool:
    """True when ONNX Runtime's u8 x s8 MatMulInteger computes 255 x 127 summed over K exactly on this CPU.

    Without VNNI each pair of products (2 x 32385) overflows int16 and saturates at 32767.
    """
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    m, k, n = 4, _PROBE_K, 16
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["y"])],
        "embedrt_u8s8_probe",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [m, n])],
        [numpy_helper.from_array(np.full((k, n), 127, dtype=np.int8), "b")],  # a constant weight, as in a real engine
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": np.full((m, k), 255, dtype=np.uint8)})[0]
    return bool((got == k * 255 * 127).all())


@functools.lru_cache(maxsize=1)
def cpu_record() -> dict[str, Any]:
    """This CPU as a manifest or a benchmark records it: model name, architecture, int8-relevant flags, the kernel probe."""
    model, flags = cpuinfo()
    return {
        "model": model or platform.processor() or "unknown",
        "machine": platform.machine(),
        "flags": [f for f in INT8_FLAGS if f in flags],
        "u8s8_exact": u8s8_exact(),
    }


def describe_cpu(record: dict[str, Any]) -> str:
    """One line for messages: 'Intel Xeon (x86_64; avx2 avx512f avx512_vnni; int8 kernel exact)'."""
    if not record:
        return "an unrecorded CPU"
    kernel = "int8 kernel exact" if record.get("u8s8_exact") else "int8 u8 x s8 kernel saturates"
    flags = " ".join(record.get("flags", ())) or "no AVX2/AVX-512"
    return f"{record.get('model', 'unknown')} ({record.get('machine', '?')}; {flags}; {kernel})"


def cpuinfo() -> tuple[str, set[str]]:
    """The CPU's model name and flags as /proc/cpuinfo gives them (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "", set()
    model, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    return model, flags
