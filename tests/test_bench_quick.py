"""`embedrt bench --quick` runs end to end on the real bundled model and writes a complete record (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from embedrt.cli import main


@pytest.mark.slow
def test_quick_bench_writes_results_with_ratios_conditions_and_roofline(minilm_dir, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(["bench", "--quick", "--text-model", str(minilm_dir), "--no-variants", "--baselines", "fp32",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    document = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in document["results"]] == [
        "text/latency/b1/mixed", "text/throughput/b32/mixed", "text/throughput/budget/mixed"]
    for result in document["results"]:
        engines = {row["engine"]: row for row in result["engines"]}
        assert set(engines) == {"embedrt fp32", "pytorch fp32"}
        ours = engines["embedrt fp32"]
        assert ours["speedup_vs_pytorch_fp32"] > 0 and ours["p50_latency_ratio_vs_pytorch_fp32"] > 0
        assert ours["p50_ms"] <= ours["p95_ms"] <= ours["p99_ms"]
        assert 0 < ours["roofline_fraction"] and ours["roofline_peak"].startswith("fp32 GEMM")
        assert ours["calls"] == result["calls_per_engine"] == engines["pytorch fp32"]["calls"]
        assert result["lengths"]["max_length"] == 256
    latency = document["results"][0]
    assert latency["calls_per_engine"] == 24 and latency["items_per_call"] == 1
    conditions = document["conditions"]
    assert conditions["usable_cpus"] >= 1 and "onnxruntime" in conditions["versions"]
    assert document["roofline"]["fp32_peak_gflops"] > 0
    assert (out / "results.png").stat().st_size > 0
    table = (out / "results.md").read_text()
    assert "| text/latency/b1/mixed | embedrt fp32 |" in table
    assert "| text/latency/b1/mixed | embedrt fp32 |" in capsys.readouterr().out  # the table is printed too
    # a run compared with itself has not regressed
    assert main(["bench", "--results", str(out / "results.json"), "--compare", str(out / "results.json")]) == 0
