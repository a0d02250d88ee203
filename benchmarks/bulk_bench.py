"""Bulk embedding: the streaming job to Parquet and Ray Data (1 and 2 actors) against in-memory `embed`, same texts.

Each engine runs in a fresh process (peak RSS is per process) on the same Parquet file of mixed
sentences. In-memory and streaming load the model first and time the work alone (`seconds`; with the
load: `seconds_with_load`). Ray's `seconds` is the whole Dataset job on a local Ray started with the
machine's CPUs (actor start and one model load per actor included, as a user pays it; `ray.init` is
`ray_init_s`, apart); its `steady_texts_per_s` counts the rows over the span from the first actor
call's start to the last one's end, summed over actors' own busy time too (`busy_s`). Engines
`rayAxT` run A actors of T ONNX Runtime threads with embed_dataset's default sizing otherwise.
Throughput ratios are against in-memory `embed` measured in the same run. Each actor reports its
own peak RSS (VmHWM) with every batch.

    python benchmarks/bulk_bench.py [MODEL] [--count 20000] [--repeat N] [--engines memory,streaming,ray1x2,ray2x1]
        [--workdir DIR] [--out FILE]

--workdir keeps the corpus and the exported model between invocations, so the engines can run in
separate (shorter) locked runs on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_mb(pid: str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) / 1024


def run_in_memory(model: str, source: str, workdir: str) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    import embedrt

    loading = time.perf_counter()
    embedder = embedrt.load(model)
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    end = time.perf_counter()
    np.save(Path(workdir) / "memory.npy", vectors)
    return {"seconds": end - start, "seconds_with_load": end - loading, "rows": len(texts)}


def run_streaming(model: str, source: str, workdir: str) -> dict:
    import embedrt
    from embedrt.bulk.embedding import text_embedding
    from embedrt.bulk.job import BulkJob
    from embedrt.bulk.sources import open_text_file

    loading = time.perf_counter()
    embedder = embedrt.load(model)
    out = Path(workdir) / "stream.parquet"
    job = BulkJob(out, open_text_file(source), model={"path": model}, options={}, dim=embedder.dim, overwrite=True)
    job.open()
    start = time.perf_counter()
    summary = job.run(text_embedding(embedder), quiet=True)
    end = time.perf_counter()
    return {"seconds": end - start, "seconds_with_load": end - loading, "rows": summary.written}


def cpu_seconds_by_role() -> dict[str, float]:
    """CPU seconds used so far by this driver, the embedding actors and Ray's other processes (from /proc)."""
    tick, roles = os.sysconf("SC_CLK_TCK"), {"driver": 0.0, "actors": 0.0, "ray_other": 0.0}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            used = (int(fields[11]) + int(fields[12])) / tick
            if int(entry) == os.getpid():
                roles["driver"] += used
            elif b"MapWorker" in cmdline:
                roles["actors"] += used
            elif b"ray::" in cmdline or b"/ray/" in cmdline:
                roles["ray_other"] += used
    return roles


def timed_embed_class():
    """embedrt.ray.Embed that also returns, per batch, its actor's pid, the call's start and end and the actor's peak RSS."""
    import numpy as np

    import embedrt.ray

    class TimedEmbed(embedrt.ray.Embed):
        def __call__(self, batch):
            start = time.time()
            out = super().__call__(batch)
            rows = len(out[self.output_column])
            out["bench_pid"] = np.full(rows, os.getpid())
            out["bench_start"], out["bench_end"] = np.full(rows, start), np.full(rows, time.time())
            out["bench_peak_mb"] = np.full(rows, peak_mb())
            return out

    return TimedEmbed


def run_ray(model: str, source: str, workdir: str, actors: int, threads: int) -> dict:
    import pyarrow.parquet as pq
    import ray

    import embedrt.ray

    started = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)  # the machine's CPUs, as a user gets it
    init_s = time.perf_counter() - started
    try:
        cpu_before = cpu_seconds_by_role()
        start, wall_start = time.perf_counter(), time.time()
        ds = embedrt.ray.embed_dataset(ray.data.read_parquet(source), model, concurrency=actors, threads=threads,
                                       embed_class=timed_embed_class())
        target = Path(workdir) / f"ray{actors}x{threads}"
        shutil.rmtree(target, ignore_errors=True)  # write_parquet adds files to a directory: an earlier round's would count twice
        ds.write_parquet(str(target))
        seconds = time.perf_counter() - start
        cpu_after = cpu_seconds_by_role()  # actors that exited before this are missing: their busy_s says what they did
        cpus = embedrt.ray.node_cpus(ray)
    finally:
        ray.shutdown()
    calls = pq.read_table(target, columns=["bench_pid", "bench_start", "bench_end", "bench_peak_mb"]).to_pandas()
    rows = len(calls)
    calls = calls.drop_duplicates(["bench_pid", "bench_start"])  # one line per actor call
    actors_seen = calls.groupby("bench_pid")
    return {
        "seconds": seconds, "rows": rows, "ray_init_s": round(init_s, 2), "cluster_cpus": cpus,
        "first_call_s": round(calls.bench_start.min() - wall_start, 2),  # actor start, model load, first read
        "steady_texts_per_s": round(rows / (calls.bench_end.max() - calls.bench_start.min()), 1),
        "busy_s": [round(float((g.bench_end - g.bench_start).sum()), 1) for _, g in actors_seen],
        "calls": [len(g) for _, g in actors_seen],
        "actor_peak_mb": [round(float(g.bench_peak_mb.max()), 1) for _, g in actors_seen],
        "cpu_s": {role: round(cpu_after[role] - cpu_before[role], 1) for role in cpu_after},
    }


def child(engine: str, model: str, source: str, workdir: str) -> None:
    if engine.startswith("ray"):
        actors, threads = engine[3:].split("x")
        result = run_ray(model, source, workdir, int(actors), int(threads))
    else:
        result = {"memory": run_in_memory, "streaming": run_streaming}[engine](model, source, workdir)
    result["peak_mb"] = round(peak_mb(), 1)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="export dir (default: the bundled model, exported to a temp dir)")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--engines", default="memory,streaming,ray1x2,ray2x1",
                        help="comma-separated: memory, streaming, rayAxT (A actors of T threads); memory is the baseline")
    parser.add_argument("--workdir", default=None, help="keep the corpus and model here (made on the first run, reused after)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every engine, interleaved; the best of each is reported")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--child", nargs=4, metavar=("ENGINE", "MODEL", "SOURCE", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import pyarrow as pa
    import pyarrow.parquet as pq

    from embedrt.bench.machine import machine_conditions
    from embedrt.sample_text import sample_sentences

    engines = args.engines.split(",")
    unknown = [e for e in engines if e not in ("memory", "streaming") and not (e.startswith("ray") and e[3:].replace("x", "", 1).isdigit() and "x" in e)]
    if unknown or "memory" not in engines:
        raise SystemExit(f"--engines {args.engines}: use memory (always: the baseline), streaming and rayAxT, e.g. ray2x1.")
    workdir = args.workdir or tempfile.mkdtemp(prefix="embedrt-bulk-bench-")
    Path(workdir).mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        model = str(Path(workdir) / "minilm")
        if not (Path(model) / "embedrt.json").exists():
            from embedrt.export import export_text

            export_text("default", model)
    source = str(Path(workdir) / f"corpus-{args.count}.parquet")
    if not Path(source).exists():
        pq.write_table(pa.table({"text": sample_sentences(args.count, seed=0)}), source, row_group_size=4096)
    results: dict[str, dict] = {}
    print(f"uptime at the start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", flush=True)
    for _ in range(args.repeat):  # rounds interleave the engines, so a load that drifts hits each alike; the best round counts
        for engine in engines:
            out = subprocess.run([sys.executable, __file__, "--child", engine, model, source, workdir], capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
            result = json.loads(line[7:])
            result["texts_per_s"] = round(result["rows"] / result["seconds"], 1)
            result["load_after"] = round(os.getloadavg()[0], 2)
            print(f"{engine:10s} {result}", flush=True)
            if engine not in results or result["texts_per_s"] > results[engine]["texts_per_s"]:
                results[engine] = result
    base = results["memory"]["texts_per_s"]
    for engine, r in results.items():
        r["vs_in_memory"] = round(r["texts_per_s"] / base, 3)
        if "steady_texts_per_s" in r:
            r["steady_vs_in_memory"] = round(r["steady_texts_per_s"] / base, 3)
    document = {"benchmark": "bulk", "count": args.count, "model": model, "conditions": machine_conditions(), "results": results}
    print(f"\n{'engine':10s} {'texts/s':>8s} {'vs embed':>8s} {'steady':>8s} {'vs embed':>8s} {'peak MB':>8s}  actors' peak MB")
    for engine, r in results.items():
        print(f"{engine:10s} {r['texts_per_s']:8.1f} {r['vs_in_memory']:8.3f} {r.get('steady_texts_per_s', ''):>8} "
              f"{r.get('steady_vs_in_memory', ''):>8} {r['peak_mb']:8.1f}  {r.get('actor_peak_mb', '')}")
    print(f"load average at the end: {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
