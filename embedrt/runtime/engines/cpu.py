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

    m, k, n = 4, _PROBE_K, 16
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(probe_model(m, k, n), sess_options=options, providers=["CPUExecutionProvider"])
    got = session.run(None, {"a": np.full((m, k), 255, dtype=np.uint8)})[0]
    return bool((got == k * 255 * 127).all())


def probe_model(m: int, k: int, n: int) -> bytes:
    """The probe's ONNX model: y[m, n] = MatMulInteger(a: u8[m, k], b: a constant s8[k, n] of 127s, as in a real engine).

    Serialized here, field by field (onnx.proto's numbers), because the runtime must not need the onnx package.
    """
    uint8, int8, int32 = 2, 3, 6  # TensorProto.DataType

    def value_info(name: str, elem_type: int, dims: tuple[int, ...]) -> bytes:
        shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim, each a dim_value
        return _field(1, name) + _field(2, _field(1, _field(1, elem_type) + _field(2, shape)))  # name, TypeProto.tensor_type

    weight = np.full((k, n), 127, dtype=np.int8)
    initializer = b"".join(_field(1, d) for d in weight.shape) + _field(2, int8) + _field(8, "b") + _field(9, weight.tobytes())
    node = _field(1, "a") + _field(1, "b") + _field(2, "y") + _field(4, "MatMulInteger")
    graph = (_field(1, node) + _field(2, "embedrt_u8s8_probe") + _field(5, initializer)
             + _field(11, value_info("a", uint8, (m, k))) + _field(12, value_info("y", int32, (m, n))))
    return _field(1, 8) + _field(7, graph) + _field(8, _field(1, "") + _field(2, 17))  # ir_version 8, graph, opset 17


def _field(number: int, value: int | str | bytes) -> bytes:
    """One protobuf field: an int as a varint, a str or bytes length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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
