"""`embedrt bench`: embedrt vs its PyTorch baselines, and the regression gate on their ratios."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_REGRESSED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure embedrt against PyTorch; compare with a recorded baseline",
                           description="Measure embedrt against its PyTorch baselines in one process (interleaved), "
                           "write results.json, results.md and results.png to --out, and optionally gate on a baseline.")
    bench.add_argument("--out", default="bench-out", metavar="DIR", help="where results.json/.md/.png go (default: bench-out)")
    bench.add_argument("--quick", action="store_true", help="a small text suite in about a minute (for CI); the full suite is for releases")
    bench.add_argument("--suite", choices=("all", "text", "image", "text-vs-st"), default=None,
                       help="all (default), text, image, or text-vs-st: embedrt (fp32 and its precision variants) vs "
                       "sentence-transformers fp32 and bf16 on 2,000 mixed-length sentences, and batch-1 latency "
                       "(default with --quick: text)")
    bench.add_argument("--text-model", action="append", default=[], metavar="DIR",
                       help="an fp32 text export dir to measure (repeatable; default: the bundled all-MiniLM-L6-v2)")
    bench.add_argument("--image-model", metavar="DIR", help="an image export dir (default: ResNet-50, random weights, exported once)")
    bench.add_argument("--no-variants", dest="variants", action="store_false",
                       help="measure only the fp32 exports, not the precision variants embedrt can make of them")
    bench.add_argument("--baselines", default="fp32,bf16", metavar="LIST", help="PyTorch precisions to compare with (default: fp32,bf16)")
    bench.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    bench.add_argument("--compare", metavar="BASELINE.json", help="gate on a recorded results file: exit 1 naming each regressed workload")
    bench.add_argument("--max-regression", default="10%", metavar="PCT", help="largest tolerated worsening of a ratio (default: 10%%)")
    bench.add_argument("--results", metavar="RESULTS.json", help="compare this existing results file instead of running the benchmark")
    bench.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedrt.bench.compare import check_same_cpu, compare_results, parse_threshold
    from embedrt.bench.report import busy_warning, read_results, table, write_report
    from embedrt.errors import EmbedrtError

    threshold = parse_threshold(args.max_regression)
    baseline = read_results(args.compare) if args.compare else None
    if args.results:
        if baseline is None:
            raise EmbedrtError("--results FILE only makes sense with --compare BASELINE.json.")
        document = read_results(args.results)
    else:
        if baseline is not None:  # refuse before measuring, not after
            from embedrt.bench.machine import machine_conditions

            check_same_cpu({"conditions": machine_conditions()}, baseline)
        document = _measure(args)
        written = write_report(document, Path(args.out))
        print(table(document))
        if busy_warning(document):
            print(f"warning: {busy_warning(document)}", file=sys.stderr)
        _print_targets(document)
        print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    if baseline is None:
        return 0
    comparison = compare_results(document, baseline, threshold)
    print(comparison.summary())
    return EXIT_REGRESSED if comparison.regressions else 0


def _measure(args: argparse.Namespace) -> dict:
    from embedrt.bench.runner import BenchOptions, run_suite
    from embedrt.bench.workloads import suite_workloads
    from embedrt.errors import EmbedrtError

    suite = args.suite or ("text" if args.quick else "all")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    unknown = set(baselines) - {"fp32", "bf16", "fp16"}
    if unknown or not baselines:
        raise EmbedrtError(f"--baselines {args.baselines!r}: choose from fp32, bf16 (and fp16 on a CUDA device).")
    options = BenchOptions(quick=args.quick, text_models=args.text_model, image_model=args.image_model,
                           device=args.device, baselines=baselines, variants=args.variants)
    return run_suite(suite_workloads(suite, args.quick), options, suite=suite, progress=args.progress)


def _print_targets(document: dict) -> None:
    from embedrt.bench.workloads import TARGETS

    for workload, precision, field, op, bound in TARGETS:
        for result in document["results"]:
            if result["name"] != workload:
                continue
            for row in result["engines"]:
                value = row.get(field)
                if value is None or row["role"] != "embedrt" or (precision and row["precision"] != precision):
                    continue
                met = value >= bound if op == ">=" else value <= bound
                print(f"target {workload} [{row['engine']}] {field} {op} {bound}: {value:.2f} -> {'met' if met else 'MISSED'}")
