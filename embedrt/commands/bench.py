"""`embedrt bench`: embedrt vs its PyTorch baselines, and the regression gate on their ratios."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_REGRESSED = 1


def add_arguments(bench: argparse.ArgumentParser) -> None:
    bench.description = ("Measure embedrt against its PyTorch baselines in one process (interleaved), "
                         "write results.json, results.md and results.png to --out, and optionally gate on a baseline.")
    bench.add_argument("--out", default="bench-out", metavar="DIR", help="where results.json/.md/.png go (default: bench-out)")
    bench.add_argument("--quick", action="store_true", help="a small text suite for CI: several minutes on 2 cores (7 on a busy Zen 3); the full suite is for releases")
    bench.add_argument("--suite", choices=("all", "text", "image", "text-vs-st", "peers"), default=None,
                       help="all (default), text, image, or text-vs-st: embedrt (fp32 and its precision variants) vs "
                       "sentence-transformers fp32 and bf16 on 2,000 mixed-length sentences, and batch-1 latency "
                       "(default with --quick: text); peers: embedrt against sentence-transformers' ONNX and OpenVINO "
                       "backends, fastembed and torch bf16, each in its own process and venv (make bench-peers)")
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
    peers = bench.add_argument_group("--suite peers")
    peers.add_argument("--peers", metavar="LIST", help="contenders to measure, comma-separated, from torch-bf16, st-onnx, st-onnx-o3, "
                       "st-onnx-qint8, st-openvino, st-openvino-f32, st-openvino-int8, fastembed, embedrt-fp32, embedrt-int8, embedrt-bf16 (default: all; "
                       "torch fp32 always runs); a results file already in --out keeps the contenders not named")
    peers.add_argument("--peer-venvs", default=".venv-peers", metavar="DIR", help="the peers' virtual environments (default: .venv-peers)")
    peers.add_argument("--rounds", type=int, default=None, metavar="N", help="rounds of [torch fp32, contender] (default: 3; 1 with --quick)")
    peers.add_argument("--lines", type=int, default=None, metavar="N", help="mixed-length lines embedded per run (default: 2000; 200 with --quick)")
    peers.add_argument("--latency-calls", type=int, default=None, metavar="N",
                       help="batch-1 calls on short queries per run (default: 50; 10 with --quick)")
    bench.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedrt.bench.compare import check_same_cpu, compare_results, parse_threshold
    from embedrt.bench.report import busy_warning, read_results, table, write_report
    from embedrt.errors import EmbedrtError

    if args.suite == "peers":
        return _run_peers(args)
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
    if "fp16" in baselines and args.device == "cpu":
        raise EmbedrtError("--baselines fp16 is a GPU baseline (PyTorch runs fp16 on a CPU at a fraction of fp32's speed): "
                           "add --device cuda, or leave fp16 out.")
    if args.device != "cpu":
        _check_gpu_baselines(args.device)
    options = BenchOptions(quick=args.quick, text_models=args.text_model, image_model=args.image_model,
                           device=args.device, baselines=baselines, variants=args.variants)
    return run_suite(suite_workloads(suite, args.quick), options, suite=suite, progress=args.progress)


def _check_gpu_baselines(device: str) -> None:
    """--device cuda/tensorrt: the PyTorch baselines need a CUDA build of torch that sees a GPU; say so before measuring."""
    from embedrt.errors import EmbedrtError

    try:
        import torch
    except ImportError:
        return  # the engines' own error names what to install
    if not torch.cuda.is_available():
        raise EmbedrtError(f"--device {device}: this torch ({torch.__version__}) sees no CUDA GPU, so its baselines would not run on one; "
                           "run the bench on a GPU machine with a CUDA build of torch, or use --device cpu.")


def _run_peers(args: argparse.Namespace) -> int:
    from embedrt.bench.peers import PEER_NAMES, PeersOptions, merge_results, run_peers, selected
    from embedrt.bench.peers_report import RESULTS_JSON, peers_table, read_peers_results, write_peers_report
    from embedrt.bench.report import busy_warning
    from embedrt.errors import EmbedrtError

    if args.compare or args.results:
        raise EmbedrtError("--suite peers records ratios to torch fp32 measured in the same run; it has no --compare or --results gate.")
    quick = args.quick
    defaults = {"rounds": (1, 3), "lines": (200, 2000), "latency_calls": (10, 50)}  # (with --quick, without)
    counts = {name: (quick_default if quick else full) if getattr(args, name) is None else getattr(args, name)
              for name, (quick_default, full) in defaults.items()}
    for option, value in counts.items():
        if value < 1:
            raise EmbedrtError(f"--{option.replace('_', '-')} {value}: give a positive count.")
    options = PeersOptions(**counts, peers=selected(args.peers) if args.peers else PEER_NAMES, venvs=Path(args.peer_venvs),
                           text_model=args.text_model[0] if args.text_model else None)
    document = run_peers(options)
    out = Path(args.out)
    if args.peers:
        document = merge_results(read_peers_results(out / RESULTS_JSON), document)
    written = write_peers_report(document, out)
    print(peers_table(document))
    if busy_warning(document):
        print(f"warning: {busy_warning(document)}", file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


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
