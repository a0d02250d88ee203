"""Issue 17's speed targets on this CPU: embedrt fp32 and int8 against sentence-transformers torch fp32, and
ResNet-50 int8 against PyTorch fp32, in one process, interleaved, with the corrected GEMM roofline.

A measurement, not a test. `--part text`: 2,000 mixed-length sentences (embedrt's token budget vs encode()'s
default batch of 32) and batch-1 latency on 100 short queries (3-10 words); `--part image`: ResNet-50 (random
weights) at batch 16. Writes the usual results.json/.md/.png to --out and prints each target, met or missed,
with the fp32 engines' share of the fp32 GEMM peak measured in the same run. Run each part under the lock:

    flock /tmp/embedrt-bench.lock python benchmarks/speed_targets.py --part text [--out bench-out/targets-text]
"""

from __future__ import annotations

import argparse
import json
import operator
import sys
from pathlib import Path

from embedrt.bench.report import write_report
from embedrt.bench.runner import BenchOptions, run_suite
from embedrt.bench.workloads import Workload, image_suite, text_vs_sentence_transformers_suite

# workload, the embedrt precision bound (None: every embedrt engine), field, comparison, bound (issue 17's "Targets").
TARGETS = (
    ("text/throughput/budget/mixed", "int8", "speedup_vs_pytorch_fp32", ">=", 6.0),
    ("text/throughput/budget/mixed", "fp32", "roofline_fraction", ">=", 0.85),
    ("text/latency/b1/short", "int8", "p50_latency_ratio_vs_pytorch_fp32", "<=", 0.3),
    ("text/latency/b1/short", "fp32", "p50_latency_ratio_vs_pytorch_fp32", "<=", 0.5),
    ("image/throughput/b16/photos", "int8", "speedup_vs_pytorch_fp32", ">=", 5.0),
    # The bf16 engine (OpenVINO, on a CPU with bf16 units) held to the throughput bound of int8 and the latency bound of fp32.
    ("text/throughput/budget/mixed", "bf16", "speedup_vs_pytorch_fp32", ">=", 6.0),
    ("text/latency/b1/short", "bf16", "p50_latency_ratio_vs_pytorch_fp32", "<=", 0.5),
)
SHOWN = ("items_per_s", "p50_ms", "speedup_vs_pytorch_fp32", "p50_latency_ratio_vs_pytorch_fp32", "achieved_gflops", "roofline_fraction")


def workloads(part: str) -> list[Workload]:
    if part == "text":
        (throughput, _) = text_vs_sentence_transformers_suite()
        return [throughput, Workload("text/latency/b1/short", "text", "latency", "short", 100, 1)]
    return [w for w in image_suite(quick=False) if w.kind == "throughput"]


def print_targets(document: dict) -> None:
    compare = {">=": operator.ge, "<=": operator.le}
    r = document["roofline"]
    print(f"\nCPU {document['conditions']['cpu']}, load average {document['conditions']['load_average_at_start']} -> "
          f"{document['conditions']['load_average_at_end']}; GEMM peak fp32 {r['fp32_peak_gflops']} GFLOP/s, int8 {r.get('int8_peak_gops')} GOP/s"
          f"{'; busy: ' + json.dumps(r['busy']) if r.get('busy') else ''}")
    for result in document["results"]:
        print(f"\n{result['name']}")
        for row in result["engines"]:
            print(f"  {row['engine']:28}" + " ".join(f"{k}={row[k]}" for k in SHOWN if row.get(k) is not None))
    print("\nissue 17's targets:")
    for name, precision, field, op, bound in TARGETS:
        for result in (r for r in document["results"] if r["name"] == name):
            for row in result["engines"]:
                if row["role"] == "embedrt" and row["precision"] == precision and row.get(field) is not None:
                    verdict = "met" if compare[op](row[field], bound) else "MISSED"
                    print(f"  {name} {row['engine']}: {field} {row[field]} (target {op} {bound}): {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("text", "image"), required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--text-model", action="append", default=[], help="an fp32 text export dir (default: the bundled model)")
    args = parser.parse_args(argv)
    options = BenchOptions(text_models=args.text_model, baselines=("fp32",))
    document = run_suite(workloads(args.part), options, suite=f"issue-17-targets-{args.part}", progress=False)
    write_report(document, args.out or Path(f"bench-out/targets-{args.part}"))
    print_targets(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
