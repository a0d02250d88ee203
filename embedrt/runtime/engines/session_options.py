"""ONNX Runtime session options chosen for embedding workloads, each overridable by name."""

from __future__ import annotations

import os
from typing import Any

import onnxruntime as ort

from embedrt.errors import EmbedrtError

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def physical_cores() -> int:
    """Physical cores available to this process: one ORT thread per core beats one per hyper-thread."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return max(1, usable)


def session_options(
    *,
    optimization: str = "all",
    intra_op_threads: int | None = None,
    inter_op_threads: int = 1,
    spinning: bool = True,
    log_severity: int = 3,
    config: dict[str, str] | None = None,
) -> ort.SessionOptions:
    """Throughput and latency defaults: full graph optimisation, one intra-op thread per core, spinning on
    (lowest latency between runs; turn it off when the CPU is shared with other busy work)."""
    if optimization not in _LEVELS:
        raise EmbedrtError(f"optimization={optimization!r} is not one of {', '.join(_LEVELS)}.")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _LEVELS[optimization]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = intra_op_threads or physical_cores()
    opts.inter_op_num_threads = inter_op_threads
    opts.log_severity_level = log_severity
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "1" if spinning else "0")
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, value)
    return opts


SessionSettings = dict[str, Any]  # keyword arguments of session_options()
