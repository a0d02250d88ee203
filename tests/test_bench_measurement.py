"""The measuring parts of `embedrt bench`: interleaving, statistics, inputs, FLOP counts, ratios, report files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from embedrt.bench.report import RESULTS_JSON, RESULTS_MD, RESULTS_PNG, markdown, write_report
from embedrt.bench.roofline import (GEMM_KINDS, INT8_WEIGHT_MAX, best_of, gemm_input, gemm_model, gemm_session, measure_gemm_peak,
                                   peak_for, text_flops_per_token, timed_runs)
from embedrt.bench.runner import add_ratios
from embedrt.bench.timing import interleave, summarize
from embedrt.bench.workloads import suite_workloads, text_inputs, texts_of_tokens
from embedrt.runtime.engines.cpu import u8s8_exact
from embedrt.runtime.engines.openvino_backend import bf16_units

MINILM = {"num_hidden_layers": 6, "hidden_size": 384, "intermediate_size": 1536}


def test_interleave_runs_each_item_on_every_engine_rotating_who_goes_first():
    order = []
    runs = {name: (lambda item, name=name: order.append((item, name))) for name in ("a", "b", "c")}
    seconds = interleave(runs, [0, 1, 2, 3], warmup=["w"], settle_s=0)
    assert order[:3] == [("w", "a"), ("w", "b"), ("w", "c")]  # warm-up, untimed
    timed = order[3:]
    assert [name for _, name in timed] == list("abc" "bca" "cab" "abc")
    assert [item for item, _ in timed] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert {name: len(s) for name, s in seconds.items()} == {"a": 4, "b": 4, "c": 4}

def test_interleave_in_blocks_runs_a_block_back_to_back_after_one_untimed_call():
    order = []
    runs = {name: (lambda item, name=name: order.append((item, name))) for name in ("a", "b")}
    seconds = interleave(runs, [0, 1, 2, 3, 4], settle_s=0, block=2)
    # blocks [0, 1], [2, 3], [4]: each contender's block starts with its first item untimed, the starter rotates
    assert order == [(0, "a"), (0, "a"), (1, "a"), (0, "b"), (0, "b"), (1, "b"),
                     (2, "b"), (2, "b"), (3, "b"), (2, "a"), (2, "a"), (3, "a"),
                     (4, "a"), (4, "a"), (4, "b"), (4, "b")]
    assert {name: len(s) for name, s in seconds.items()} == {"a": 5, "b": 5}



def test_summarize_gives_percentiles_in_ms_and_throughput_at_the_median_call():
    seconds = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    stats = summarize(seconds, items_per_call=10)
    assert stats["calls"] == 100
    assert stats["p50_ms"] == pytest.approx(50.5)
    assert stats["p95_ms"] == pytest.approx(95.05)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["items_per_s"] == pytest.approx(10 / 0.0505)


def test_minilm_costs_about_22_mflop_per_token():
    assert text_flops_per_token(MINILM, 0) == pytest.approx(21.23e6, rel=1e-3)
    assert text_flops_per_token(MINILM, 128) == pytest.approx(21.23e6 + 128 * 9216, rel=1e-3)


def test_texts_of_tokens_have_exactly_that_many_tokens(minilm_source):
    from tokenizers import Tokenizer

    tokenizer_file = minilm_source / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    for tokens in (16, 128, 256):
        texts = texts_of_tokens(tokenizer_file, 4, tokens)
        assert [len(tokenizer.encode(t).ids) for t in texts] == [tokens] * 4
        assert texts == texts_of_tokens(tokenizer_file, 4, tokens)  # deterministic


def test_suites_name_each_workload_once_and_quick_is_a_subset_of_full():
    full = {w.name for w in suite_workloads("all", quick=False)}
    quick = [w.name for w in suite_workloads("text", quick=True)]
    assert len(quick) == len(set(quick))
    assert set(quick) <= full  # so a quick run can be compared with a full baseline
    assert {"text/throughput/b8/mixed", "text/throughput/b128/mixed", "text/latency/b1/doc-512", "image/throughput/b16/photos"} <= full


def test_mixed_inputs_are_deterministic_and_of_mixed_length(minilm_source):
    (workload,) = [w for w in suite_workloads("text-vs-st", quick=False) if w.kind == "throughput"]
    texts = text_inputs(workload, minilm_source / "tokenizer.json")
    assert len(texts) == 2000
    assert texts == text_inputs(workload, minilm_source / "tokenizer.json")
    words = [len(t.split()) for t in texts]
    assert min(words) == 4 and max(words) == 64


def test_ratios_compare_each_embedrt_engine_with_each_baseline():
    rows = [
        {"engine": "embedrt fp32", "key": "embedrt_fp32", "role": "embedrt", "items_per_s": 300.0, "p50_ms": 4.0},
        {"engine": "pytorch fp32", "key": "pytorch_fp32", "role": "baseline", "items_per_s": 100.0, "p50_ms": 12.0},
        {"engine": "pytorch bf16", "key": "pytorch_bf16", "role": "baseline", "items_per_s": 150.0, "p50_ms": 10.0},
    ]
    add_ratios(rows)
    assert rows[0]["speedup_vs_pytorch_fp32"] == 3.0
    assert rows[0]["speedup_vs_pytorch_bf16"] == 2.0
    assert rows[0]["p50_latency_ratio_vs_pytorch_fp32"] == pytest.approx(0.333, abs=1e-3)
    assert rows[0]["p50_latency_ratio_vs_pytorch_bf16"] == 0.4
    assert not any(k.startswith("speedup") for k in rows[1])  # baselines carry no ratio to themselves


def test_gemm_peak_is_measured_for_fp32_and_int8_with_the_settings_that_choose_the_kernels(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # recorded as set (the kernel itself was chosen when numpy loaded)
    peak = measure_gemm_peak(256, 2)
    assert peak["fp32_peak_gflops"] == max(peak["fp32_numpy_gflops"], peak["fp32_onnxruntime_gflops"]) > 0
    assert peak["int8_peak_gops"] == peak["int8_dynamic_onnxruntime_gops"] > 0
    assert peak["int8_kernel_onnxruntime_gops"] > 0 and peak["int8_weight_bits"] == (8 if u8s8_exact() else 7)
    assert peak["env"]["OPENBLAS_CORETYPE"] == "Haswell"
    assert peak["b_operand"] == "initializer (prepacked)" and peak["warmups"] >= 3
    assert peak["blas"]["internal_api"] == "openblas" and peak["blas"]["architecture"]
    for name, run in peak["runs"].items():
        assert run["runs"] >= 2 and run["worst"] <= run["median"] <= run["best"], name
        assert peak[f"{name}_{'gops' if name.startswith('int8') else 'gflops'}"] == run["best"]
        assert "other_processes_cores" in run and "stolen_cores" in run
    assert peak_for(peak, "int8") == (peak["int8_peak_gops"], "int8")
    assert peak_for(peak, "fp32") == (peak["fp32_peak_gflops"], "fp32")
    if not bf16_units():  # no bf16 units here (Zen 3), as OpenVINO says: bf16 engines are refused too, and held against nothing
        assert "no bf16 units" in peak["bf16_unavailable"] and peak_for(peak, "bf16") == (peak["fp32_peak_gflops"], "fp32")
    else:
        assert peak_for(peak, "bf16") == (peak["bf16_openvino_gflops"], "bf16") and peak["bf16_peak_gflops"] > 0


@pytest.mark.cpu_dependent
def test_the_bf16_gemm_compiles_exactly_where_openvino_lists_bf16_units():
    """The peak's bf16 GEMM and the bf16 engines share compile_bf16: in bf16 on a CPU with bf16 units, refused elsewhere."""
    from embedrt.errors import ProviderError
    from embedrt.runtime.engines.openvino_backend import compile_bf16, import_openvino

    model = import_openvino().Core().read_model(gemm_model(64, "fp32").SerializeToString(), b"")
    if bf16_units():
        assert compile_bf16(model).get_property("INFERENCE_PRECISION_HINT").get_type_name() == "bf16"
    else:
        with pytest.raises(ProviderError, match=r"has no bf16 units .* in f32"):
            compile_bf16(model)


def test_blas_kernel_is_the_one_openblas_chose_not_the_one_the_cpu_could_run():
    """OPENBLAS_CORETYPE=Haswell makes OpenBLAS run its AVX2 kernel even on an AVX-512 CPU: the record must say so."""
    import subprocess
    import sys

    code = "from embedrt.bench.roofline import blas_kernel; import numpy; print(blas_kernel()['architecture'])"
    for coretype in ("Haswell", "Prescott"):
        env = {**os.environ, "OPENBLAS_CORETYPE": coretype}
        got = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout.strip()
        assert got == coretype


@pytest.mark.parametrize("kind", GEMM_KINDS)
def test_gemm_weights_are_initializers_so_onnx_runtime_prepacks_them(kind):
    model = gemm_model(64, kind)
    assert [i.name for i in model.graph.input] == ["a"]
    assert "b" in {t.name for t in model.graph.initializer}


@pytest.mark.cpu_dependent
def test_int8_gemm_runs_fused_as_dynamic_int8_engines_do_and_computes_the_product(tmp_path):
    """The exported int8 text engine runs DynamicQuantizeMatMul after ONNX Runtime's fusions; so must its peak, with the
    weights an export makes here: 7-bit where the u8 x s8 kernel saturates, on which 8-bit ones gave cosine 0.993 (Zen 3)."""
    import onnx
    from onnx import numpy_helper

    session = gemm_session(64, "int8_dynamic", optimized_path=tmp_path / "fused.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node]
    assert ops == ["DynamicQuantizeMatMul"]
    feed = gemm_input(64, "int8_dynamic")
    weights = {t.name: numpy_helper.to_array(t) for t in gemm_model(64, "int8_dynamic").graph.initializer}
    assert np.abs(weights["b"]).max() == INT8_WEIGHT_MAX[8 if u8s8_exact() else 7]
    exact = feed["a"] @ (weights["b"].astype(np.float32) * weights["b_scale"])
    got = session.run(None, feed)[0]
    cosine = float((got * exact).sum() / np.linalg.norm(got) / np.linalg.norm(exact))
    assert cosine > 0.999  # u8 activations: close, not exact


def test_a_busy_neighbour_is_counted():
    """A process spinning on one core while the timed call sleeps: about one core of someone else's work."""
    import subprocess
    import sys
    import time

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        run = timed_runs(lambda: time.sleep(0.05), 1e9, repeats=4, warmups=0)
    finally:
        spinner.kill()
        spinner.wait()
    assert run["other_processes_cores"] >= 0.8  # other agents on this machine can only add to it


def test_best_of_two_measurements_keeps_each_figure_with_when_it_was_taken():
    def measured(numpy, ort, busy_cores):
        run = lambda best: {"runs": 5, "best": best, "median": best, "worst": best, "spread_pct": 0.0, "other_processes_cores": busy_cores}  # noqa: E731
        return {"gemm_size": 2048, "repeats": 5, "fp32_numpy_gflops": numpy, "fp32_onnxruntime_gflops": ort, "fp32_peak_gflops": max(numpy, ort),
                "runs": {"fp32_numpy": run(numpy), "fp32_onnxruntime": run(ort)}}

    best = best_of(measured(200.0, 180.0, 1.2), measured(190.0, 400.0, 0.0))
    assert best["fp32_peak_gflops"] == 400.0 and best["fp32_numpy_gflops"] == 200.0
    assert best["runs"]["fp32_onnxruntime"]["when"] == "end" and best["runs"]["fp32_numpy"]["when"] == "start"
    assert list(best["busy"]) == ["fp32_numpy"]  # the figure kept from the busy start is flagged; the quiet one is not
    assert "1.2 cores" in markdown({**_document(), "roofline": best})


def _document() -> dict:
    engines = [
        {"engine": "embedrt fp32", "key": "embedrt_fp32", "role": "embedrt", "precision": "fp32", "p50_ms": 4.0, "p95_ms": 5.0,
         "p99_ms": 6.0, "items_per_s": 250.0, "speedup_vs_pytorch_fp32": 2.8, "p50_latency_ratio_vs_pytorch_fp32": 0.33,
         "achieved_gflops": 40.0, "roofline_fraction": 0.5},
        {"engine": "pytorch fp32", "key": "pytorch_fp32", "role": "baseline", "precision": "fp32", "p50_ms": 12.0, "p95_ms": 14.0,
         "p99_ms": 15.0, "items_per_s": 90.0, "achieved_gflops": 14.0, "roofline_fraction": 0.18},
    ]
    result = {"name": "text/throughput/b32/mixed", "modality": "text", "kind": "throughput", "inputs": "mixed", "batch": 32,
              "lengths": {"tokens_mean": 60.0}, "engines": engines}
    return {"suite": "text", "quick": True, "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0,
            "conditions": {"cpu": "Test CPU", "usable_cpus": 2, "cpu_flags": ["avx2"], "gpus": [], "versions": {"embedrt": "0.1.0"}},
            "roofline": {"gemm_size": 256, "repeats": 2, "fp32_peak_gflops": 80.0, "int8_peak_gops": 300.0},
            "results": [result]}


def test_markdown_table_shows_ratios_and_roofline_fraction():
    text = markdown(_document())
    row = next(line for line in text.splitlines() if line.startswith("| text/throughput/b32/mixed | embedrt fp32"))
    assert "| 2.80x |" in row and "| 0.33x |" in row and "| 50% |" in row
    assert "speedup vs pytorch fp32" in text
    assert "fp32 80.0 GFLOP/s" in text


def test_report_writes_json_markdown_and_a_png(tmp_path):
    written = write_report(_document(), tmp_path / "out")
    assert [p.name for p in written] == [RESULTS_JSON, RESULTS_MD, RESULTS_PNG]
    assert json.loads((tmp_path / "out" / RESULTS_JSON).read_text())["results"][0]["engines"][0]["speedup_vs_pytorch_fp32"] == 2.8
    assert (tmp_path / "out" / RESULTS_PNG).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


def test_pytorch_fp16_baseline_is_added_only_on_a_cuda_device():
    """Configuration only (this machine has no GPU): which baselines a GPU run would measure, and against which peak."""
    from embedrt.bench.engines import pytorch_baselines

    assert [p for p, _ in pytorch_baselines("cpu")] == ["fp32", "bf16"]
    assert [p for p, _ in pytorch_baselines("cuda")] == ["fp32", "bf16", "fp16"]
    gpu = {"fp32_peak_gflops": 100.0, "gpu_fp32_peak_gflops": 19000.0, "gpu_fp16_peak_gflops": 120000.0}
    assert peak_for(gpu, "fp16", on_gpu=True) == (120000.0, "GPU fp16")
    assert peak_for(gpu, "fp32", on_gpu=True) == (19000.0, "GPU fp32")
    assert peak_for(gpu, "fp32") == (100.0, "fp32")


def test_a_run_on_a_busy_machine_says_so():
    document = _document()
    assert "busy" not in markdown(document)
    document["conditions"]["load_average_at_start"] = [9.5, 8.0, 6.0]
    assert "the machine was busy (1-minute load average 9.5 on 2 CPUs)" in markdown(document)
