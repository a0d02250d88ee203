"""The regression gate of `embedrt bench --compare`, on synthetic result files: ratios, not times, decide."""

from __future__ import annotations

import json

import pytest

from embedrt.bench.compare import compare_results, parse_threshold
from embedrt.cli import main
from embedrt.errors import EmbedrtError


def results(**workloads: tuple[float, float]) -> dict:
    """A results document: workload name -> (speedup_vs_pytorch_fp32, p50_latency_ratio_vs_pytorch_fp32) of embedrt fp32."""
    return {
        "schema": "embedrt-bench/1",
        "results": [
            {
                "name": name.replace("__", "/"),
                "engines": [
                    {"engine": "embedrt fp32", "role": "embedrt", "p50_ms": 5.0, "items_per_s": 900.0,
                     "speedup_vs_pytorch_fp32": speedup, "p50_latency_ratio_vs_pytorch_fp32": latency},
                    {"engine": "pytorch fp32", "role": "baseline", "p50_ms": 15.0, "items_per_s": 300.0},
                ],
            }
            for name, (speedup, latency) in workloads.items()
        ],
    }


BASELINE = results(text__latency__b1__mixed=(3.0, 0.30), text__throughput__b32__mixed=(2.7, 0.37))


def write(tmp_path, name: str, document: dict) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_a_speedup_that_fell_beyond_the_threshold_is_a_regression():
    current = results(text__latency__b1__mixed=(3.0, 0.30), text__throughput__b32__mixed=(2.2, 0.37))
    comparison = compare_results(current, BASELINE, 0.10)
    assert comparison.regressed_workloads == ["text/throughput/b32/mixed"]
    (change,) = comparison.regressions
    assert change.field == "speedup_vs_pytorch_fp32"
    assert change.change == pytest.approx(2.2 / 2.7 - 1)


def test_a_latency_ratio_that_rose_beyond_the_threshold_is_a_regression():
    current = results(text__latency__b1__mixed=(3.0, 0.36), text__throughput__b32__mixed=(2.7, 0.37))
    comparison = compare_results(current, BASELINE, 0.10)
    assert comparison.regressed_workloads == ["text/latency/b1/mixed"]
    assert comparison.regressions[0].field == "p50_latency_ratio_vs_pytorch_fp32"
    assert comparison.regressions[0].change == pytest.approx(0.30 / 0.36 - 1)


def test_an_improvement_is_not_a_regression():
    current = results(text__latency__b1__mixed=(3.6, 0.20), text__throughput__b32__mixed=(3.5, 0.25))
    comparison = compare_results(current, BASELINE, 0.10)
    assert comparison.regressions == []
    assert all(c.change > 0 for c in comparison.changes)


def test_noise_within_the_threshold_is_not_a_regression():
    current = results(text__latency__b1__mixed=(2.8, 0.32), text__throughput__b32__mixed=(2.55, 0.39))
    comparison = compare_results(current, BASELINE, 0.10)
    assert len(comparison.changes) == 4
    assert comparison.regressions == []
    # the same run fails a tighter gate
    assert compare_results(current, BASELINE, 0.05).regressed_workloads == ["text/latency/b1/mixed", "text/throughput/b32/mixed"]


def test_workloads_missing_from_the_run_are_listed_not_failed():
    current = results(text__latency__b1__mixed=(3.0, 0.30))
    comparison = compare_results(current, BASELINE, 0.10)
    assert comparison.missing == ["text/throughput/b32/mixed [embedrt fp32]"]
    assert comparison.regressions == []
    assert "missing" in comparison.summary()


def test_runs_that_share_no_workload_cannot_be_compared():
    with pytest.raises(EmbedrtError, match="share no workload"):
        compare_results(results(image__latency__b1__photos=(2.0, 0.5)), BASELINE, 0.10)


@pytest.mark.parametrize("text, expected", [("10%", 0.10), ("2.5%", 0.025), ("10", 0.10), ("0.1", 0.10), ("0%", 0.0)])
def test_max_regression_reads_percentages_and_fractions(text, expected):
    assert parse_threshold(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["ten", "-5%", "150%", ""])
def test_a_bad_max_regression_is_an_error_naming_the_option(text):
    with pytest.raises(EmbedrtError, match="--max-regression"):
        parse_threshold(text)


def test_cli_exits_1_naming_each_regressed_workload(tmp_path, capsys):
    current = results(text__latency__b1__mixed=(2.0, 0.45), text__throughput__b32__mixed=(2.2, 0.37))
    code = main(["bench", "--results", write(tmp_path, "now.json", current),
                 "--compare", write(tmp_path, "base.json", BASELINE), "--max-regression", "10%"])
    out = capsys.readouterr().out
    assert code == 1
    assert "regressed beyond 10%: text/latency/b1/mixed, text/throughput/b32/mixed" in out
    assert out.count("REGRESSED") == 3  # two ratios of the latency workload, one of the throughput workload


def test_cli_exits_0_when_within_the_threshold(tmp_path, capsys):
    current = results(text__latency__b1__mixed=(2.9, 0.31), text__throughput__b32__mixed=(2.8, 0.36))
    code = main(["bench", "--results", write(tmp_path, "now.json", current),
                 "--compare", write(tmp_path, "base.json", BASELINE), "--max-regression", "10%"])
    assert code == 0
    assert "no workload regressed" in capsys.readouterr().out


def test_cli_names_an_unreadable_baseline_file(tmp_path, capsys):
    bad = tmp_path / "base.json"
    bad.write_text("{not json")
    code = main(["bench", "--results", write(tmp_path, "now.json", BASELINE), "--compare", str(bad)])
    assert code == 2
    assert str(bad) in capsys.readouterr().err


def test_cli_refuses_results_without_a_baseline(tmp_path, capsys):
    assert main(["bench", "--results", write(tmp_path, "now.json", BASELINE)]) == 2
    assert "--compare" in capsys.readouterr().err


ZEN5 = {"cpu": "AMD EPYC", "cpu_flags": ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"]}
ZEN3 = {"cpu": "AMD EPYC", "cpu_flags": ["avx", "avx2", "fma"]}


def test_runs_from_cpus_with_other_instruction_sets_are_not_compared(tmp_path, capsys):
    baseline = {**BASELINE, "conditions": ZEN5}
    slower = results(text__latency__b1__mixed=(2.0, 0.45), text__throughput__b32__mixed=(1.9, 0.5))
    with pytest.raises(EmbedrtError, match="instruction sets differ"):
        compare_results({**slower, "conditions": ZEN3}, baseline, 0.10)
    code = main(["bench", "--results", write(tmp_path, "now.json", {**slower, "conditions": ZEN3}),
                 "--compare", write(tmp_path, "base.json", baseline)])
    err = capsys.readouterr().err
    assert code == 2 and "avx512_vnni" in err and "false regression" in err


def test_runs_from_the_same_instruction_set_are_compared(tmp_path):
    slower = results(text__latency__b1__mixed=(2.0, 0.45), text__throughput__b32__mixed=(2.2, 0.37))
    comparison = compare_results({**slower, "conditions": dict(ZEN3)}, {**BASELINE, "conditions": dict(ZEN3)}, 0.10)
    assert comparison.regressed_workloads == ["text/latency/b1/mixed", "text/throughput/b32/mixed"]
