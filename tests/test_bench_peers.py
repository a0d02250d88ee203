"""The peers suite without the peers' venvs: a tiny real run of embedrt against torch fp32 in their own processes,
the ratio arithmetic on its measured numbers, the results file, and contenders that cannot run here reported as skipped."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from embedrt.bench.peers import (BASELINE, PEER_NAMES, PeersOptions, cosines, merge_results, neighbour_ratios, qint8_config,
                                 run_peers, selected)
from embedrt.bench.peers_report import peers_markdown, write_peers_report
from embedrt.cli import main
from embedrt.errors import EmbedrtError


@pytest.fixture(scope="module")
def tiny_run(minilm_dir, tmp_path_factory):
    """embedrt fp32 against sentence-transformers torch fp32: 12 lines, 2 rounds, 3 batch-1 calls, real processes."""
    lines: list[str] = []
    options = PeersOptions(lines=12, rounds=2, latency_calls=3, peers=("embedrt-fp32",), text_model=str(minilm_dir),
                           venvs=tmp_path_factory.mktemp("no-venvs"), work=tmp_path_factory.mktemp("peers-work"))
    return run_peers(options, say=lines.append), lines


@pytest.mark.slow
def test_runs_alternate_torch_fp32_and_the_contender_with_torch_on_both_sides(tiny_run):
    document, said = tiny_run
    assert [(r["contender"], r["round"]) for r in document["runs"]] == [
        ("torch-fp32", 0), ("embedrt-fp32", 0), ("torch-fp32", 0), ("embedrt-fp32", 1), ("torch-fp32", 1)]
    assert len(said) == 6 and said[0] == "warm-up run of torch-fp32 (untimed)" and said[2].startswith("round 1/2 embedrt-fp32: ")
    pids = {r["sequence"]: r for r in document["runs"]}
    assert all(r["texts_per_s"] > 0 and r["p50_ms"] > 0 for r in pids.values())


@pytest.mark.slow
def test_ratio_is_the_median_over_rounds_of_the_contender_over_its_neighbouring_torch_runs(tiny_run):
    document, _ = tiny_run
    runs = document["runs"]
    tps = [r["texts_per_s"] for r in runs]
    p50 = [r["p50_ms"] for r in runs]
    by_round = [tps[1] / ((tps[0] + tps[2]) / 2), tps[3] / ((tps[2] + tps[4]) / 2)]
    p50_by_round = [p50[1] / ((p50[0] + p50[2]) / 2), p50[3] / ((p50[2] + p50[4]) / 2)]
    row = {c["name"]: c for c in document["contenders"]}["embedrt-fp32"]
    assert row["ratio"] == pytest.approx(float(np.median(by_round)))
    assert row["p50_ratio"] == pytest.approx(float(np.median(p50_by_round)))
    assert row["texts_per_s"] == pytest.approx(float(np.median([tps[1], tps[3]])))
    assert [r["ratio"] for r in neighbour_ratios(runs, "embedrt-fp32")] == pytest.approx(by_round)
    base = {c["name"]: c for c in document["contenders"]}[BASELINE.name]
    assert base["ratio"] == 1.0 and base["texts_per_s"] == pytest.approx(float(np.median([tps[0], tps[2], tps[4]])))
    assert base["rounds_measured"] == 3 and row["rounds_measured"] == 2


@pytest.mark.slow
def test_accuracy_truncation_and_versions_sit_beside_every_speed(tiny_run):
    document, _ = tiny_run
    rows = {c["name"]: c for c in document["contenders"]}
    ours, base = rows["embedrt-fp32"], rows[BASELINE.name]
    assert 0.999 < ours["cosine_min"] <= ours["cosine_mean"] < 1.0001  # embedrt fp32 is torch fp32 to rounding
    assert base["cosine_min"] > 0.99999  # torch fp32 against its own first run
    assert ours["max_length"] == base["max_length"] == 256 and ours["truncated_inputs"] == 0
    assert ours["batch"].startswith("token budget") and base["batch"] == "32, sorted by length"
    assert "embedrt" in ours["versions"] and base["versions"]["torch"].startswith("2.13")
    conditions = document["conditions"]
    assert conditions["cpu"] and "avx2" in conditions["cpu_flags"] and conditions["load_average_at_end"]
    assert document["workload"]["lines"] == 12 and document["workload"]["threads"] == 2 and document["rounds"] == 2


@pytest.mark.slow
def test_results_file_and_table_name_each_contender_and_the_conditions(tiny_run, tmp_path):
    document, _ = tiny_run
    written = write_peers_report(document, tmp_path)
    assert [p.name for p in written] == ["results.json", "results.md"]
    assert json.loads(written[0].read_text())["contenders"][0]["name"] == BASELINE.name
    table = written[1].read_text()
    assert table.count("| sentence-transformers torch fp32 | ") == 1 and table.count("| embedrt fp32 | ") == 1
    assert document["conditions"]["cpu"] in table and "0 of 12 (at 256)" in table


def test_a_missing_venv_is_skipped_with_its_reason_and_nothing_is_timed(tmp_path):
    document = run_peers(PeersOptions(lines=4, rounds=1, latency_calls=1, peers=("st-onnx", "fastembed"), venvs=tmp_path / "none"),
                         say=lambda line: None)
    rows = {c["name"]: c for c in document["contenders"]}
    assert set(rows) == {"st-onnx", "fastembed"} and document["runs"] == []
    assert rows["st-onnx"]["status"] == "skipped"
    assert rows["st-onnx"]["reason"] == (f"no virtual environment at {tmp_path / 'none' / 'st-onnx'}: create it with "
                                         "`make bench-peers` (installs requirements/peers-st-onnx.txt)")
    assert "Skipped:" in peers_markdown(document) and "peers-fastembed.txt" in peers_markdown(document)


def _venv_running_this_python(root, name):
    """A peer venv whose python is this interpreter: the worker really runs, without the peer's libraries."""
    python = root / name / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)


def test_fastembed_is_skipped_naming_the_onnx_export_it_needs_when_that_export_fails(tmp_path):
    _venv_running_this_python(tmp_path, "fastembed")
    _venv_running_this_python(tmp_path, "st-onnx")  # this venv has no optimum: st-onnx's export of model.onnx fails
    document = run_peers(PeersOptions(lines=4, rounds=1, latency_calls=1, peers=("fastembed",), venvs=tmp_path, work=tmp_path / "w"),
                         say=lambda line: None)
    (row,) = document["contenders"]
    assert row["status"] == "skipped" and document["runs"] == []
    assert row["reason"].startswith("could not be prepared here: it runs the model.onnx that st-onnx exports, which failed: "
                                    "prepare exited with status 1: ")


def test_a_contender_whose_worker_fails_is_skipped_with_the_tail_of_its_stderr(tmp_path):
    _venv_running_this_python(tmp_path, "st-openvino")  # this venv has no optimum-intel: the real export fails
    document = run_peers(PeersOptions(lines=4, rounds=1, latency_calls=1, peers=("st-openvino",), venvs=tmp_path, work=tmp_path / "w"),
                         say=lambda line: None)
    (row,) = document["contenders"]
    assert row["status"] == "skipped" and document["runs"] == []
    assert row["reason"].startswith("could not be prepared here: prepare exited with status 1: ")
    assert row["reason"].endswith("requires installing Optimum and OpenVINO. You can install them with pip: "
                                  "`pip install sentence-transformers[openvino]`")  # the exception the traceback ends with


@pytest.mark.slow
def test_a_part_measured_later_replaces_its_contenders_and_keeps_the_others(tiny_run, tmp_path):
    first, _ = tiny_run
    later = run_peers(PeersOptions(lines=12, rounds=1, latency_calls=1, peers=("fastembed",), venvs=tmp_path), say=lambda line: None)
    merged = merge_results(merge_results(None, first), later)
    assert [c["name"] for c in merged["contenders"]] == [BASELINE.name, "fastembed", "embedrt-fp32"]
    assert [c["status"] for c in merged["contenders"]] == ["measured", "skipped", "measured"]
    assert len(merged["parts"]) == 2 and merged["parts"][1]["contenders"] == ["fastembed"]
    assert len(merged["runs"]) == 5
    # another workload size does not mix with the earlier file: it starts afresh
    assert len(merge_results(merged, {**later, "workload": {**later["workload"], "lines": 99}})["parts"]) == 1


def test_cosines_compare_directions_and_refuse_other_shapes():
    a = np.array([[1.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    assert cosines(3 * a, a) == pytest.approx([1.0, 1.0])
    assert cosines(np.array([[0.0, 2.0], [1.0, -1.0]]), a) == pytest.approx([0.0, 0.0])
    with pytest.raises(EmbedrtError, match=r"shape \(1, 2\).*\(2, 2\)"):
        cosines(a[:1], a)


def test_the_quantisation_config_follows_the_cpu_and_peers_names_are_checked():
    assert qint8_config(["avx2", "avx512f", "avx512_vnni"]) == "avx512_vnni"
    assert qint8_config(["avx2", "fma"]) == "avx2"
    assert selected("embedrt-int8, st-onnx") == ("st-onnx", "embedrt-int8")  # the suite's order
    with pytest.raises(EmbedrtError, match=r"--peers 'onnx'.*st-onnx-o3"):
        selected("onnx")
    assert BASELINE.name not in PEER_NAMES


def test_cli_peers_suite_reports_a_missing_venv_and_refuses_bad_counts(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", "--suite", "peers", "--peers", "st-onnx-o3", "--peer-venvs", str(tmp_path / "none"), "--out", str(out)]) == 0
    document = json.loads((out / "results.json").read_text())
    assert [(c["name"], c["status"]) for c in document["contenders"]] == [("st-onnx-o3", "skipped")]
    assert "no virtual environment at" in (out / "results.md").read_text()
    capsys.readouterr()
    assert main(["bench", "--suite", "peers", "--rounds", "0", "--out", str(out)]) == 2
    assert "--rounds 0: give a positive count" in capsys.readouterr().err
    assert main(["bench", "--suite", "peers", "--compare", str(out / "results.json"), "--out", str(out)]) == 2
    assert "no --compare or --results gate" in capsys.readouterr().err


def test_cli_help_names_every_contender(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps lines, at hyphens too
    assert ",".join(PEER_NAMES) in help_text
