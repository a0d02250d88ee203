"""The whole GPU check in one run (issue 25): GPU tests, fused GPU exports, embedrt vs sentence-transformers torch.

Run by benchmarks/gpu_check.sh from the repo root. Each stage is in its own try: a failure is recorded with its
traceback and the next stage runs. Writes gpu_check.json and bench-<model>.md to --out and prints a summary.
Dry run on a CPU: python benchmarks/gpu_check.py --device cpu --shapes tiny --lines 100 --latency-calls 10 --out /tmp/x
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

REPORT: dict[str, Any] = {"stages": {}, "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S', time.gmtime())}] {message}", flush=True)


def stage(name: str, fn: Callable[[], Any]) -> Any:
    """Run one stage, record its result or its error, never raise."""
    log(f"== {name}")
    start = time.perf_counter()
    try:
        result = fn()
        REPORT["stages"][name] = {"ok": True, "seconds": round(time.perf_counter() - start, 1), "result": result}
        log(f"== {name}: ok in {time.perf_counter() - start:.1f} s")
        return result
    except BaseException as exc:  # a stage's failure must not lose the others' figures
        if isinstance(exc, KeyboardInterrupt):
            raise
        REPORT["stages"][name] = {"ok": False, "seconds": round(time.perf_counter() - start, 1),
                                  "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        log(f"== {name}: FAILED ({type(exc).__name__}: {exc})")
        traceback.print_exc()
        return None


# -- stages ---------------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    import onnxruntime as ort

    found: dict[str, Any] = {"python": sys.version.split()[0], "onnxruntime": ort.__version__, "onnxruntime_file": ort.__file__,
                             "providers": ort.get_available_providers()}
    for name in ("torch", "transformers", "sentence_transformers", "tokenizers", "onnx", "numpy"):
        try:
            found[name] = __import__(name).__version__
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            found[name] = f"not importable: {exc}"
    try:
        import torch

        found["torch_cuda"] = torch.version.cuda
        found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception as exc:  # noqa: BLE001
        found["gpu"] = f"unknown: {exc}"
    from embedrt.runtime.engines.providers import preload_gpu_libraries, tensorrt_library_loads

    if "CUDAExecutionProvider" in found["providers"]:
        preload_gpu_libraries()
    found["tensorrt_10_loads"] = tensorrt_library_loads()
    found["nproc"] = os.cpu_count()
    return found


def gpu_tests(timeout_s: int) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", str(ROOT / "tests" / "test_gpu.py"), "-rs", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    print(done.stdout[-6000:], done.stderr[-2000:], sep="\n", flush=True)
    result = {"returncode": done.returncode, "summary": (done.stdout.strip().splitlines() or [""])[-1]}
    if done.returncode not in (0, 5):  # 5: nothing collected/all deselected
        raise RuntimeError(f"pytest -m gpu exited {done.returncode}: {result['summary']}")
    return result


def export_all(shape: str, work: Path, device: str) -> dict[str, str]:
    """The shape's source dir, its plain fp32 export, and the fused GPU fp32 and fp16 exports (through the export command)."""
    from gpu_models import build_model

    source = build_model(work / f"{shape}-source", shape)
    dirs = {"source": str(source)}
    for name, argv in (("fp32", []), ("fp32-cuda", ["--provider", "cuda"]), ("fp16-cuda", ["--precision", "fp16", "--provider", "cuda"])):
        out = work / f"{shape}-{name}"
        start = time.perf_counter()
        code = run_command("export", ["text", str(source), "--out", str(out), "--overwrite", *argv])
        if code != 0:
            raise RuntimeError(f"embedrt export {name} exited {code}")
        manifest = json.loads((out / "embedrt.json").read_text())
        log(f"exported {shape} {name} in {time.perf_counter() - start:.1f} s: {manifest['optimizations']}, "
            f"min cosine {manifest['parity']['min_cosine']:.6f}")
        dirs[name] = str(out)
    return dirs


def run_command(name: str, argv: list[str]) -> int:
    """One embedrt command, as the CLI runs it (only that command's module and extras are imported)."""
    from embedrt.cli import main as cli_main

    code = cli_main([name, *argv])
    if code != 0:
        raise RuntimeError(f"embedrt {name} {' '.join(argv)} exited {code}")
    return code


def bench(shape: str, dirs: dict[str, str], device: str, lines: int, latency_calls: int, out: Path) -> dict[str, Any]:
    """embedrt fp32 / fp32 fused / fp16 fused vs sentence-transformers fp32 and fp16 at batch 32 and 256, in one run."""
    from embedrt.bench.report import markdown, table
    from embedrt.bench.runner import BenchOptions, run_suite
    from embedrt.bench.workloads import _text

    workloads = [_text("throughput", None, "mixed", lines, repeats=3), _text("latency", 1, "short", latency_calls)]
    models = [dirs["fp32"]] + ([dirs["fp32-cuda"], dirs["fp16-cuda"]] if device != "cpu" else [])
    options = BenchOptions(text_models=models, device=device, baselines=("fp32", "fp16") if device != "cpu" else ("fp32",), variants=False)
    document = run_suite(workloads, options, suite=f"gpu-check {shape}", progress=False)
    print(table(document), flush=True)
    (out / f"bench-{shape}.md").write_text(markdown(document))
    return document


def tokenising(shape: str, dirs: dict[str, str], lines: int) -> dict[str, Any]:
    from embedrt.manifest import read_manifest
    from embedrt.runtime.text.tokenization import encode, load_tokenizer
    from embedrt.sample_text import sample_sentences

    path = Path(dirs["fp32"])
    tokenizer = load_tokenizer(path, read_manifest(path).text)
    texts = sample_sentences(lines, min_words=4, max_words=64, seed=1)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        encoded = encode(tokenizer, texts, offsets=False)
        times.append(time.perf_counter() - start)
    return {"texts": lines, "tokens_mean": round(float(encoded.lengths.mean()), 1), "best_ms": round(1e3 * min(times), 2),
            "median_ms": round(1e3 * sorted(times)[2], 2), "cpus": os.cpu_count()}


def embed_profile(dirs: dict[str, str], device: str, lines: int) -> dict[str, Any]:
    """One whole-list embed() of the fp16 (GPU) or fp32 engine: pipelined or not, at the 16,384 and 65,536 budgets."""
    import logging

    import embedrt
    from embedrt.sample_text import sample_sentences

    logging.getLogger("embedrt").setLevel(logging.ERROR)  # a truncation warning per call would flood the log
    path = dirs["fp16-cuda"] if device != "cpu" else dirs["fp32"]
    texts = sample_sentences(lines, min_words=4, max_words=64, seed=1)
    base = embedrt.TextEmbedder(path, device=device)
    found = {}
    for budget in (16384, 65536):
        for pipeline in (True, False):
            embedder = embedrt.TextEmbedder(path, device=device, backend=base.backend, max_batch_tokens=budget, pipeline=pipeline)
            embedder.embed(texts)  # warm
            times = []
            for _ in range(3):
                start = time.perf_counter()
                embedder.embed(texts)
                times.append(time.perf_counter() - start)
            found[f"budget {budget}, pipeline {'on' if pipeline else 'off'}"] = round(1e3 * min(times), 1)
    return {"engine": path, "lines": lines, "embed_ms_best_of_3": found}


def batch1_graphs(dirs: dict[str, str], device: str, calls: int) -> list[str]:
    """Batch-1 p50 of a short query with CUDA graphs off and on (the default on CUDA), and how far their vectors are apart."""
    import numpy as np

    import embedrt
    from embedrt.sample_text import sample_sentences

    texts = ["one short query", *sample_sentences(20, min_words=1, max_words=150, seed=5)]  # several length buckets
    lines = []
    for name in ("fp32-cuda", "fp16-cuda") if device != "cpu" else ("fp32",):
        plain = embedrt.TextEmbedder(dirs[name], device=device, cuda_graphs=False)
        graphs = embedrt.TextEmbedder(dirs[name], device=device)  # on by default on CUDA; off on a CPU
        unpipelined = embedrt.TextEmbedder(dirs[name], device=device, backend=graphs.backend, pipeline=False)
        p50 = {}
        for label, embedder in (("off", plain), ("on", graphs), ("on, pipeline off", unpipelined)):
            for _ in range(20):
                embedder.embed([texts[0]])  # warm (the graphs were captured at load)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                embedder.embed([texts[0]])
                times.append(time.perf_counter() - start)
            p50[label] = 1e3 * float(np.median(times))
        diff = max(float(np.abs(plain.embed([t]) - graphs.embed([t])).max()) for t in texts)
        lines.append(f"  {name}: batch-1 short p50 {p50['off']:.3f} ms graphs off, {p50['on']:.3f} ms graphs "
                     f"{'on' if graphs.backend.cuda_graphs is not None else 'OFF (not used)'} "
                     f"({p50['on, pipeline off']:.3f} ms with pipeline=False); max |diff| {diff:.2e} over {len(texts)} texts")
    print("\n".join(lines), flush=True)
    return lines


# -- summary --------------------------------------------------------------------------------------------------
def summary(shape: str, document: dict[str, Any], tokens: dict[str, Any] | None) -> list[str]:
    rows = {}
    for result in document["results"]:
        for row in result["engines"]:
            rows.setdefault(row["engine"], {})[result["kind"]] = row
    st_fp32 = rows.get("pytorch fp32 cuda", {}).get("throughput")
    st16 = [rows.get(n, {}).get("throughput") for n in ("pytorch fp16 cuda", "pytorch fp16 cuda b256")]
    st16_best = max((r for r in st16 if r), key=lambda r: r["items_per_s"], default=None)
    lines = [f"{shape}: GPU {document['roofline'].get('gpu_name', 'none')}, fp16 GEMM peak {document['roofline'].get('gpu_fp16_peak_gflops')} GFLOP/s"]
    for name, kinds in rows.items():
        tp, lat = kinds.get("throughput"), kinds.get("latency")
        cells = [f"  {name:28s}"]
        if tp:
            cells.append(f"{tp['items_per_s']:9.1f} texts/s")
            if st_fp32 and tp is not st_fp32:
                cells.append(f"{tp['items_per_s'] / st_fp32['items_per_s']:5.2f}x ST fp32")
            if st16_best and tp is not st16_best:
                cells.append(f"{tp['items_per_s'] / st16_best['items_per_s']:5.2f}x ST fp16 best")
            if tp.get("roofline_fraction") is not None:
                cells.append(f"{100 * tp['roofline_fraction']:.1f}% of peak")
        if lat:
            cells.append(f"batch-1 short p50 {lat['p50_ms']:.2f} ms")
        lines.append("  ".join(cells))
    if tokens:
        lines.append(f"  tokenising {tokens['texts']} mixed sentences: {tokens['best_ms']} ms best of 5 ({tokens['cpus']} CPUs)")
    lines += [f"  WARNING {w}" for w in document.get("warnings", [])]
    lines += targets(shape, rows, st_fp32, st16_best, tokens)
    return lines


# Issue 25's targets on an H100/H200-class GPU: (shape, what, bound, measured from the rows).
def targets(shape: str, rows: dict, st_fp32: dict | None, st16_best: dict | None, tokens: dict | None) -> list[str]:
    fp16 = rows.get("embedrt fp16", {})
    fp32 = rows.get("embedrt fp32 fused", {})
    checks = []
    if fp16.get("throughput") and st_fp32:
        checks.append(("fp16 vs ST fp32", fp16["throughput"]["items_per_s"] / st_fp32["items_per_s"], ">=", 12.0))
    if fp16.get("throughput") and st16_best and shape == "bge-base-shape":
        checks.append(("fp16 vs ST fp16 best batch", fp16["throughput"]["items_per_s"] / st16_best["items_per_s"], ">=", 4.0))
    if fp16.get("throughput") and fp32.get("throughput") and shape == "minilm-shape":
        checks.append(("fp16 vs embedrt fp32 fused", fp16["throughput"]["items_per_s"] / fp32["throughput"]["items_per_s"], ">", 1.0))
    bound = {"minilm-shape": 1.0, "bge-base-shape": 1.5}.get(shape)
    for name in ("embedrt fp32 fused", "embedrt fp16"):
        if bound and rows.get(name, {}).get("latency"):
            checks.append((f"{name} batch-1 p50 ms", rows[name]["latency"]["p50_ms"], "<=", bound))
    if tokens and tokens["texts"] == 2000:
        checks.append(("tokenising 2,000 ms", tokens["best_ms"], "<=", 20.0))
    out = []
    for what, value, op, limit in checks:
        met = value >= limit if op == ">=" else value > limit if op == ">" else value <= limit
        out.append(f"  target {what} {op} {limit}: {value:.2f} -> {'met' if met else 'MISSED'}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "gpu-check-out"))
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--shapes", default="minilm-shape,bge-base-shape")
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--latency-calls", type=int, default=200)
    parser.add_argument("--work", default="/tmp/embedrt-gpu-check")
    parser.add_argument("--pytest-timeout", type=int, default=180)
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    REPORT["args"] = vars(args)
    REPORT["environment"] = stage("environment", environment)
    if not args.skip_tests:
        stage("pytest -m gpu", lambda: gpu_tests(args.pytest_timeout))
    lines: list[str] = []
    for shape in args.shapes.split(","):
        dirs = stage(f"{shape}: export", lambda: export_all(shape, work, args.device))
        if not dirs:
            continue
        tokens = stage(f"{shape}: tokenising", lambda: tokenising(shape, dirs, args.lines))
        stage(f"{shape}: embed profile", lambda: embed_profile(dirs, args.device, args.lines))
        graphs = stage(f"{shape}: batch-1 CUDA graphs", lambda: batch1_graphs(dirs, args.device, args.latency_calls))
        document = stage(f"{shape}: bench", lambda: bench(shape, dirs, args.device, args.lines, args.latency_calls, out))
        if document:
            lines += stage(f"{shape}: summary", lambda: summary(shape, document, tokens)) or []
        lines += graphs or []
        _write(out)
    REPORT["summary"] = lines
    REPORT["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _write(out)
    print("\n".join(["", "==== summary ====", *lines, *(f"FAILED stage {n}: {s['error']}" for n, s in REPORT["stages"].items() if not s["ok"])]))
    return 0 if all(s["ok"] for s in REPORT["stages"].values()) else 1


def _write(out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(REPORT, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
