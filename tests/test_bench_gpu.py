"""`embedrt bench --device cuda` on the CPU: its option checks, the flag on a suspect baseline, the ST best-batch engine.

The GPU figures themselves come from `pytest -m gpu` and benchmarks/gpu_check.sh on a GPU machine.
"""

from __future__ import annotations

import argparse
import re

import numpy as np
import pytest

from embedrt.bench import engines as eng
from embedrt.bench.report import markdown, table
from embedrt.bench.runner import flag_suspect_rows, suspect_warnings
from embedrt.errors import EmbedrtError


def _row(engine: str, role: str, precision: str, provider: str, items_per_s: float) -> dict:
    return {"engine": engine, "key": engine.replace(" ", "_"), "role": role, "precision": precision, "provider": provider,
            "items_per_s": items_per_s, "p50_ms": 1000 / items_per_s, "p95_ms": 1.0, "p99_ms": 1.0}


def _issue_25_rows() -> list[dict]:
    """The figures of issue 25's H200 run: pytorch fp16 at 133.6 texts/s beside fp32 at 3,880."""
    return [
        _row("embedrt fp16", "embedrt", "fp16", "CUDAExecutionProvider,CPUExecutionProvider", 5543.0),
        _row("embedrt fp32", "embedrt", "fp32", "CUDAExecutionProvider,CPUExecutionProvider", 13646.0),
        _row("pytorch fp32 cuda", "baseline", "fp32", "torch cuda", 3880.0),
        _row("pytorch fp16 cuda", "baseline", "fp16", "torch cuda", 133.6),
    ]


def test_a_gpu_baseline_far_slower_than_another_precision_of_itself_is_flagged():
    rows = _issue_25_rows()
    flag_suspect_rows(rows)
    assert rows[3]["suspect"].startswith("29.0x slower than pytorch fp32 cuda on the same device")
    assert not any("suspect" in r for r in rows[:3])  # embedrt rows are measured, not flagged; fp32 is the faster one


def test_fp32_slower_than_fp16_on_a_gpu_is_the_tensor_cores_not_a_fault():
    # the bge-base-shaped model on the H200 (benchmarks/gpu_check.py, 2026-12-04): fp32 2.7x slower than fp16 at batch 256
    rows = [_row("pytorch fp32 cuda", "baseline", "fp32", "torch cuda", 1027.7),
            _row("pytorch fp16 cuda b256", "baseline", "fp16", "torch cuda", 2723.6)]
    flag_suspect_rows(rows)
    assert not any("suspect" in r for r in rows)


def test_within_twice_is_not_flagged_and_cpu_rows_never_are():
    gpu = [_row("pytorch fp32 cuda", "baseline", "fp32", "torch cuda", 1000.0), _row("pytorch fp16 cuda", "baseline", "fp16", "torch cuda", 501.0)]
    cpu = [_row("pytorch fp32", "baseline", "fp32", "torch cpu", 100.0), _row("pytorch bf16", "baseline", "bf16", "torch cpu", 10.0)]
    flag_suspect_rows(gpu)
    flag_suspect_rows(cpu)  # bf16 on a CPU without bf16 units is slow for real
    assert not any("suspect" in r for r in gpu + cpu)


def test_the_flag_reaches_the_table_and_the_json_warnings():
    rows = _issue_25_rows()
    flag_suspect_rows(rows)
    results = [{"name": "text/throughput/budget/mixed", "modality": "text", "kind": "throughput", "inputs": "mixed", "batch": None,
                "lengths": {"tokens_mean": 68.0}, "engines": rows}]
    document = {"suite": "text-vs-st", "quick": False, "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0,
                "conditions": {"cpu": "Test CPU", "usable_cpus": 16, "cpu_flags": [], "gpus": ["NVIDIA H200"], "versions": {}},
                "roofline": {"gemm_size": 256, "repeats": 2, "fp32_peak_gflops": 80.0, "gpu_name": "NVIDIA H200",
                             "gpu_fp16_peak_gflops": 700000.0, "gpu_fp32_peak_gflops": 50000.0},
                "warnings": suspect_warnings(results), "results": results}
    assert document["warnings"] == [f"text/throughput/budget/mixed: pytorch fp16 cuda: {rows[3]['suspect']}"]
    assert "| pytorch fp16 cuda (suspect: see below) |" in table(document)
    assert "warning: text/throughput/budget/mixed: pytorch fp16 cuda: 29.0x slower" in table(document)
    assert "GPU: NVIDIA H200, GEMM peak measured by torch in this run: fp16 700000.0 GFLOP/s" in markdown(document)


def test_the_best_batch_engine_passes_its_batch_where_the_workload_leaves_it_to_the_library():
    seen = []
    base = eng.Engine("pytorch fp16 cuda", eng.BASELINE, "fp16", "torch cuda", lambda items, batch: seen.append(batch) or np.zeros((1, 1)))
    best = eng.at_batch(base, eng.ST_BEST_GPU_BATCH)
    best.embed(["a"], None)
    best.embed(["a"], 1)  # a fixed-batch workload binds
    assert seen == [256, 1] and best.label == "pytorch fp16 cuda b256" and best.key == "pytorch_fp16_cuda_b256"


def _bench_args(**overrides) -> argparse.Namespace:
    from embedrt.cli import build_parser

    args = build_parser("bench").parse_args(["bench"])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


def test_fp16_baselines_on_the_cpu_are_refused_before_measuring():
    from embedrt.commands.bench import _measure

    with pytest.raises(EmbedrtError, match="--baselines fp16 is a GPU baseline.*--device cuda"):
        _measure(_bench_args(baselines="fp32,fp16"))


def test_a_cuda_bench_without_a_cuda_torch_is_refused_before_measuring():
    import torch

    from embedrt.commands.bench import _measure

    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU")
    with pytest.raises(EmbedrtError, match=re.escape(f"--device cuda: this torch ({torch.__version__}) sees no CUDA GPU")):
        _measure(_bench_args(device="cuda", baselines="fp32,fp16"))


def test_the_st_fp16_baseline_records_half_weights_on_its_device(minilm_source):
    import torch

    engine = eng.sentence_transformers_text(minilm_source, "fp16", torch.float16, device="cpu")  # .half(), as on a GPU
    assert engine.details["weights"] == "cpu torch.float16" and engine.label == "pytorch fp16"
