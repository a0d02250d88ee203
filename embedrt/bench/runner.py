"""A suite end to end: prepare the engines, run each workload interleaved, derive ratios and roofline fractions."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from embedrt.bench import engines as eng
from embedrt.bench import models
from embedrt.bench.machine import load_average, machine_conditions
from embedrt.bench.roofline import best_of, measure_gemm_peak, measure_gpu_gemm_peak, peak_for, text_flops_per_token
from embedrt.bench.timing import interleave, summarize
from embedrt.bench.workloads import DEFAULT_TEXT, IMAGE_MODEL, LONG_TEXT, Workload, raw_tokenizer, image_inputs, text_inputs
from embedrt.manifest import read_manifest
from embedrt.runtime.batching import iter_chunks

SCHEMA = "embedrt-bench/1"
LATENCY_WARMUP_CALLS = 3
# Latency calls run in blocks of this many per contender (after one untimed call): a service's steady
# state. One call per turn timed each call just after the other library had run: on all-MiniLM-L6-v2
# at batch 1 that raised PyTorch's p50 from about 18 ms (its own process) to 28 ms, embedrt's from 9.5 to 11.
LATENCY_BLOCK = 10
REFERENCE_BASELINE = "pytorch_fp32"
SUSPECT_FACTOR = 2.0  # a baseline this much slower than another precision of itself on the same GPU is flagged  # the baseline the summary and the plot compare against first


@dataclass
class BenchOptions:
    quick: bool = False
    text_models: list[str] = field(default_factory=list)  # fp32 export dirs; empty: the bundled model
    image_model: str | None = None
    device: str = "cpu"
    baselines: tuple[str, ...] = ("fp32", "bf16")  # PyTorch precisions; fp16 is added on a CUDA device
    variants: bool = True  # also measure the precision variants embedrt can make of each fp32 export
    gemm_size: int = 2048
    gemm_repeats: int = 5


@dataclass
class Contenders:
    engines: list[eng.Engine]
    model: dict[str, Any]  # what the workload's model is, for the record
    inputs: Callable[[Workload], list]
    flops: Callable[[list], float] | None  # FLOPs of one call's inputs
    lengths: Callable[[list], dict[str, Any]]


def run_suite(workloads: Sequence[Workload], options: BenchOptions, *, suite: str, progress: bool = True) -> dict[str, Any]:
    """Measure every workload on embedrt and its baselines; return the results document (see report.write_report)."""
    started = time.time()
    conditions = machine_conditions()
    gemm = (1024, 5) if options.quick else (options.gemm_size, options.gemm_repeats)
    roofline = measure_gemm_peak(*gemm)
    if options.device != "cpu":
        roofline.update(measure_gpu_gemm_peak())
    results: list[dict[str, Any]] = []
    skipped: list[str] = []  # variants that could not be made, and why
    reported = 0
    with _progress(enabled=progress) as bar:
        for model_key in dict.fromkeys(w.model for w in workloads):
            group = [w for w in workloads if w.model == model_key]
            bar.set_description(f"loading {model_key}")
            contenders = _contenders(model_key, options, skipped)
            for line in skipped[reported:]:
                bar.write(f"skipped: {line}")
            reported = len(skipped)
            bar.add_total(sum(w.calls for w in group) * len(contenders.engines))
            for workload in group:
                bar.set_description(workload.name)
                record = _measure(workload, contenders, bar.update)
                results.append(record)
                bar.write(_one_line(record))
            del contenders
            gc.collect()
    # again at the end: a busy neighbour at the start would otherwise understate the peak
    roofline = best_of(roofline, measure_gemm_peak(*gemm))
    _fill_roofline(results, roofline)
    conditions["load_average_at_end"] = load_average()
    return {
        "schema": SCHEMA,
        "suite": suite,
        "quick": options.quick,
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "conditions": conditions,
        "roofline": roofline,
        "reference_baseline": REFERENCE_BASELINE,
        "skipped": skipped,
        "warnings": suspect_warnings(results),
        "results": results,
    }


def suspect_warnings(results: list[dict[str, Any]]) -> list[str]:
    """One line per flagged row (see flag_suspect_rows), for the table's foot and the JSON."""
    return [f"{r['name']}: {row['engine']}: {row['suspect']}" for r in results for row in r["engines"] if row.get("suspect")]


# -- engines per model ------------------------------------------------------------------------------
def _contenders(model_key: str, options: BenchOptions, skipped: list[str]) -> Contenders:
    if model_key in (DEFAULT_TEXT, LONG_TEXT):
        return _text_contenders(model_key, options, skipped)
    if model_key == IMAGE_MODEL:
        return _image_contenders(options, skipped)
    raise ValueError(model_key)


def _unique_labels(engines: list[eng.Engine]) -> list[eng.Engine]:
    """Two exports of one precision (say two --text-model dirs) keep apart by their dir names."""
    seen: dict[str, int] = {}
    for engine in engines:
        seen[engine.label] = seen.get(engine.label, 0) + 1
    for engine in engines:
        if seen[engine.label] > 1 and "path" in engine.details:
            engine.label = f"{engine.label} ({Path(engine.details['path']).name})"
    return engines


def _torch_device(options: BenchOptions) -> str:
    """PyTorch runs where embedrt runs: the CPU, or the GPU behind the cuda and tensorrt providers."""
    return "cpu" if options.device == "cpu" else "cuda"


def _with_variants(fp32_dirs: list[Path], options: BenchOptions, skipped: list[str]) -> list[Path]:
    dirs = list(fp32_dirs)
    if options.variants:
        for path in fp32_dirs:
            made, why = models.precision_variants(path, options.device)
            dirs += made
            skipped += why
    return dirs


def _text_contenders(model_key: str, options: BenchOptions, skipped: list[str]) -> Contenders:
    if model_key == LONG_TEXT:
        fp32_dirs = [models.long_text_model()]
    else:
        fp32_dirs = [models.text_model(p) for p in options.text_models] or [models.text_model(None)]
    source = models.text_source(fp32_dirs[0])
    manifest = read_manifest(fp32_dirs[0])
    assert manifest.text is not None
    max_length = manifest.text.max_length
    engines = [eng.embedrt_text(p, options.device) for p in _with_variants(fp32_dirs, options, skipped)]
    baselines = [eng.sentence_transformers_text(source, prec, dtype, device=_torch_device(options), max_seq_length=max_length)
                 for prec, dtype in eng.pytorch_baselines(_torch_device(options)) if prec in options.baselines or prec == "fp16"]
    engines += baselines
    if options.device != "cpu":  # its default batch is not its best on a GPU: both, so the ratio to the best is honest
        engines += [eng.at_batch(b, eng.ST_BEST_GPU_BATCH) for b in baselines]
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    tokenizer_file = fp32_dirs[0] / "tokenizer.json"

    def lengths_of(texts: list) -> np.ndarray:
        return np.array([len(e.ids) for e in raw_tokenizer(str(tokenizer_file)).encode_batch(list(texts))])

    def flops(texts: list) -> float:
        used = np.minimum(lengths_of(texts), max_length)
        return float(sum(n * text_flops_per_token(config, n) for n in used))

    def lengths(texts: list) -> dict[str, Any]:
        raw = lengths_of(texts)
        used = np.minimum(raw, max_length)
        return {"tokens_mean": round(float(used.mean()), 1), "tokens_min": int(used.min()), "tokens_max": int(used.max()),
                "tokens_total": int(used.sum()), "truncated_inputs": int((raw > max_length).sum()), "max_length": max_length}

    described = {"name": model_key, "export": str(fp32_dirs[0]), "source": str(source), "max_length": max_length,
                 "random_weights": model_key == LONG_TEXT,
                 "mflop_per_token_at_128_tokens": round(text_flops_per_token(config, 128) / 1e6, 2)}
    return Contenders(_unique_labels(engines), described, lambda w: text_inputs(w, tokenizer_file), flops, lengths)


def _image_contenders(options: BenchOptions, skipped: list[str]) -> Contenders:
    fp32_dir = models.image_model(options.image_model)
    manifest = read_manifest(fp32_dir)
    engines = [eng.embedrt_image(p, options.device) for p in _with_variants([fp32_dir], options, skipped)]
    preprocess = _image_preprocess(fp32_dir)
    torch_model = models.image_source_model(manifest)
    engines += [eng.pytorch_image(torch_model, preprocess, prec, dtype, device=_torch_device(options))
                for prec, dtype in eng.pytorch_baselines(_torch_device(options)) if prec in options.baselines or prec == "fp16"]
    gflop = models.image_gflop(manifest)
    assert manifest.image is not None
    described = {"name": IMAGE_MODEL, "export": str(fp32_dir), "source": manifest.source, "crop": manifest.image.crop,
                 "gflop_per_image": gflop}
    return Contenders(_unique_labels(engines), described, image_inputs,
                      (lambda images: gflop * 1e9 * len(images)) if gflop else None,
                      lambda images: {"images": len(images), "sizes": sorted({f"{a.shape[1]}x{a.shape[0]}" for a in images})})


def _image_preprocess(path: Path) -> Callable[[Sequence[Any]], np.ndarray]:
    from embedrt.runtime.image.embedder import ImageEmbedder

    return ImageEmbedder(path).preprocess


# -- one workload -------------------------------------------------------------------------------------
def _measure(workload: Workload, contenders: Contenders, tick: Callable[[], None]) -> dict[str, Any]:
    inputs = contenders.inputs(workload)
    block = 1
    if workload.kind == "latency":
        calls = [[x] for x in inputs]
        warmup = calls[:LATENCY_WARMUP_CALLS]
        block = LATENCY_BLOCK
    else:
        size = workload.items_per_call
        chunks = list(iter_chunks(inputs, size))
        calls = chunks * workload.repeats
        warmup = [chunks[0][: workload.batch or 32]]  # one batch: sessions allocate their buffers before the timing
    runs = {e.label: (lambda item, e=e: e.embed(item, workload.batch)) for e in contenders.engines}
    with _quiet_embedrt():
        seconds = interleave(runs, calls, warmup=warmup, tick=tick, block=block)
    flops_per_call = float(np.mean([contenders.flops(c) for c in calls])) if contenders.flops else None
    rows = []
    for engine in contenders.engines:
        row = {"engine": engine.label, "key": engine.key, "role": engine.role, "precision": engine.precision,
               "provider": engine.provider, "details": engine.details}
        row.update(summarize(seconds[engine.label], workload.items_per_call))
        if flops_per_call:
            row["achieved_gflops"] = round(flops_per_call / (row["p50_ms"] / 1e3) / 1e9, 2)
        rows.append(row)
    add_ratios(rows)
    flag_suspect_rows(rows)
    return {
        **{k: v for k, v in asdict(workload).items()},
        "items_per_call": workload.items_per_call,
        "calls_per_engine": len(calls),
        "warmup_calls": len(warmup),
        "interleave_block": block,
        "model": contenders.model,
        "lengths": contenders.lengths(inputs),
        "engines": rows,
    }


def _fill_roofline(results: list[dict[str, Any]], roofline: dict[str, Any]) -> None:
    """Achieved FLOP/s as a fraction of the GEMM peak of the engine's precision (int8 against int8)."""
    for result in results:
        for row in result["engines"]:
            peak, which = peak_for(roofline, row["precision"], _on_gpu(row["provider"]))
            if row.get("achieved_gflops") and peak:
                row["roofline_fraction"] = round(row["achieved_gflops"] / peak, 3)
                row["roofline_peak"] = f"{which} GEMM {peak} G/s"


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Every embedrt figure as a ratio to each baseline measured in the same run."""
    baselines = [r for r in rows if r["role"] == eng.BASELINE]
    for row in rows:
        if row["role"] != eng.EMBEDRT:
            continue
        for base in baselines:
            row[f"speedup_vs_{base['key']}"] = round(row["items_per_s"] / base["items_per_s"], 3)
            row[f"p50_latency_ratio_vs_{base['key']}"] = round(row["p50_ms"] / base["p50_ms"], 3)


def flag_suspect_rows(rows: list[dict[str, Any]], factor: float = SUSPECT_FACTOR) -> None:
    """Mark each baseline on a GPU more than `factor` times slower than a wider precision of the same library there.

    A half-precision baseline slower than fp32 on a GPU ran somewhere it should not have (the CPU, a cast per call);
    printed as a speed-up, it would flatter embedrt. fp32 several times slower than fp16 is the tensor cores, not a
    fault (3x for a bge-base shape on an H200), and on a CPU bf16 without bf16 units is slow for real: neither flagged.
    """
    on_gpu = [r for r in rows if _on_gpu(r["provider"])]
    for row in on_gpu:
        if row["role"] != eng.BASELINE:
            continue
        faster = [r for r in on_gpu if r["role"] == row["role"] and _bits(r["precision"]) > _bits(row["precision"])
                  and r["items_per_s"] > factor * row["items_per_s"]]
        if faster:
            best = max(faster, key=lambda r: r["items_per_s"])
            row["suspect"] = (f"{best['items_per_s'] / row['items_per_s']:.1f}x slower than {best['engine']} on the same device: "
                              "check where it ran (device, dtype, batch) before reading a ratio to it")


def _bits(precision: str) -> int:
    return {"fp32": 32, "fp16": 16, "bf16": 16, "int8": 8}.get(precision, 0)


def _on_gpu(provider: str) -> bool:
    return "CUDA" in provider or "Tensorrt" in provider or provider == "torch cuda"


@contextlib.contextmanager
def _quiet_embedrt() -> Iterator[None]:
    """Truncation warnings once per call would flood the terminal and cost time; the record counts them instead."""
    logger = logging.getLogger("embedrt")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def add_total(self, n: int) -> None: ...
    def set_description(self, text: str) -> None: ...
    def write(self, text: str) -> None:
        print(text, file=sys.stderr)


class _Bar(_NoBar):
    """One tick per timed call of one engine; the total grows as each model's engines are loaded."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def add_total(self, n: int) -> None:
        self.bar.total = (self.bar.total or 0) + n
        self.bar.refresh()

    def set_description(self, text: str) -> None:
        self.bar.set_description(text[:40])

    def write(self, text: str) -> None:
        self.bar.write(text, file=sys.stderr)


@contextlib.contextmanager
def _progress(*, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield _NoBar()
        return
    from tqdm import tqdm

    with tqdm(total=0, unit="call", file=sys.stderr, mininterval=0.5, dynamic_ncols=True) as bar:
        yield _Bar(bar)


def _one_line(record: dict[str, Any]) -> str:
    parts = []
    for row in record["engines"]:
        ratio = row.get(f"speedup_vs_{REFERENCE_BASELINE}")
        parts.append(f"{row['engine']} {row['p50_ms']:.1f} ms p50, {row['items_per_s']:.1f}/s" + (f" ({ratio:.2f}x)" if ratio else ""))
    return f"{record['name']}: " + "; ".join(parts)
