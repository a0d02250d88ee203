"""Bulk embedding: the streaming job to Parquet and Ray Data (1 and 2 actors) against in-memory `embed`, same texts.

Each engine runs in a fresh process (peak RSS is per process) on the same Parquet file of mixed
sentences. Times exclude loading the model where the engine allows it: in-memory and streaming load
first and time the work alone; Ray's time is the whole Dataset job (actor start and one model load
per actor included, as a user pays it). Throughput ratios are against in-memory `embed` measured in
the same run. Actors' peak RSS is read from /proc before Ray shuts down.

    python benchmarks/bulk_bench.py [MODEL] [--count 20000] [--repeat N] [--skip-ray] [--out FILE]
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

    embedder = embedrt.load(model)
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - start
    np.save(Path(workdir) / "memory.npy", vectors)
    return {"seconds": seconds, "rows": len(texts)}


def run_streaming(model: str, source: str, workdir: str) -> dict:
    import embedrt
    from embedrt.bulk.embedding import text_embedding
    from embedrt.bulk.job import BulkJob
    from embedrt.bulk.sources import open_text_file

    embedder = embedrt.load(model)
    out = Path(workdir) / "stream.parquet"
    job = BulkJob(out, open_text_file(source), model={"path": model}, options={}, dim=embedder.dim, overwrite=True)
    job.open()
    start = time.perf_counter()
    summary = job.run(text_embedding(embedder), quiet=True)
    return {"seconds": time.perf_counter() - start, "rows": summary.written}


def run_ray(model: str, source: str, workdir: str, actors: int) -> dict:
    import ray

    import embedrt.ray

    # 2 cores for the actors' ONNX Runtime threads plus one logical CPU for the read and write tasks (else they starve)
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        start = time.perf_counter()
        ds = embedrt.ray.embed_dataset(ray.data.read_parquet(source), model, concurrency=actors, threads=2 // actors)
        target = Path(workdir) / f"ray{actors}"
        shutil.rmtree(target, ignore_errors=True)  # write_parquet adds files to a directory: an earlier round's would count twice
        ds.write_parquet(str(target))
        seconds = time.perf_counter() - start
        actor_peaks = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if b"MapWorker" in open(f"/proc/{entry}/cmdline", "rb").read():
                        actor_peaks.append(round(peak_mb(entry), 1))
                except OSError:
                    pass
        rows = ray.data.read_parquet(str(Path(workdir) / f"ray{actors}")).count()
    finally:
        ray.shutdown()
    return {"seconds": seconds, "rows": rows, "actor_peak_mb": actor_peaks}


def child(engine: str, model: str, source: str, workdir: str) -> None:
    if engine.startswith("ray"):
        result = run_ray(model, source, workdir, int(engine[3:]))
    else:
        result = {"memory": run_in_memory, "streaming": run_streaming}[engine](model, source, workdir)
    result["peak_mb"] = round(peak_mb(), 1)
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=None, help="export dir (default: the bundled model, exported to a temp dir)")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--skip-ray", action="store_true")
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

    workdir = tempfile.mkdtemp(prefix="embedrt-bulk-bench-")
    model = args.model
    if model is None:
        from embedrt.export import export_text

        model = str(export_text("default", Path(workdir) / "minilm"))
    source = str(Path(workdir) / "corpus.parquet")
    pq.write_table(pa.table({"text": sample_sentences(args.count, seed=0)}), source, row_group_size=4096)
    engines = ["memory", "streaming"] + ([] if args.skip_ray else ["ray1", "ray2"])
    results: dict[str, dict] = {}
    for _ in range(args.repeat):  # rounds interleave the engines, so a load that drifts hits each alike; the best round counts
        for engine in engines:
            out = subprocess.run([sys.executable, __file__, "--child", engine, model, source, workdir], capture_output=True, text=True)
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{engine} failed:\n{out.stderr[-3000:]}")
            result = json.loads(line[7:])
            result["texts_per_s"] = round(result["rows"] / result["seconds"], 1)
            print(f"{engine:10s} {result}  load {os.getloadavg()[0]:.1f}", flush=True)
            if engine not in results or result["texts_per_s"] > results[engine]["texts_per_s"]:
                results[engine] = result
    base = results["memory"]["texts_per_s"]
    for engine, r in results.items():
        r["vs_in_memory"] = round(r["texts_per_s"] / base, 3)
    document = {"benchmark": "bulk", "count": args.count, "model": model, "conditions": machine_conditions(), "results": results}
    print(f"\n{'engine':10s} {'texts/s':>8s} {'vs embed':>8s} {'peak MB':>8s}  actors' peak MB")
    for engine, r in results.items():
        print(f"{engine:10s} {r['texts_per_s']:8.1f} {r['vs_in_memory']:8.3f} {r['peak_mb']:8.1f}  {r.get('actor_peak_mb', '')}")
    print(f"load average at the end: {os.getloadavg()}")
    if args.out:
        Path(args.out).write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
