"""The conditions of a run: CPU, cores, GPU, memory, load and package versions, recorded with every result."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

from embedrt.runtime.engines.cpu import cpuinfo, u8s8_exact
from embedrt.versions import package_versions

# Flags that decide which kernels ONNX Runtime and PyTorch can use.
CPU_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
             "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16")
PACKAGES = ("embedrt", "onnxruntime", "onnxruntime-gpu", "numpy", "tokenizers", "torch", "torchvision",
            "transformers", "sentence-transformers", "onnx", "pillow", "scikit-image")


def gpus() -> list[str]:
    """NVIDIA GPUs as nvidia-smi names them; empty when there is none (or no driver)."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.splitlines() if line.startswith("GPU")]


def _memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_conditions() -> dict:
    model, flags = cpuinfo()
    import onnxruntime as ort

    from embedrt.runtime.engines.session_options import physical_cores

    usable = physical_cores()

    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags],
        "u8s8_exact": u8s8_exact(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": _memory_gib(),
        "gpus": gpus(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime_providers": ort.get_available_providers(),
        "versions": package_versions(PACKAGES),
        "load_average_at_start": load_average(),
    }


def machine_kind(conditions: dict) -> str:
    """A short name for the kind of machine, for file names and headings: e.g. 'cpu-2x-AMD-EPYC'."""
    device = "gpu" if conditions.get("gpus") else "cpu"
    cpu = "-".join(str(conditions.get("cpu", "unknown")).split()[:3])
    return f"{device}-{conditions.get('usable_cpus')}x-{cpu}"
