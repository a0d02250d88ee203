"""Issue 15's measurement: many callers with small requests, at concurrency 1, 4, 16 and 64, 8 mixed sentences a request.

Contenders, one after another in one run, on the same requests:
  - in-process threads: C threads call one TextEmbedder.embed (each runs its own small batches: today's behaviour);
  - in-process queue:   C threads call one TextQueue (requests merged into token-budget rounds);
  - embedrt serve:      `embedrt serve` in its own process, driven over loopback HTTP by a load generator in
                        another process (C threads, one keep-alive http.client connection each, base64
                        vectors; the generator's CPU per request is printed);
  - triton:             a local tritonserver (python backend, dynamic batcher) from the same export dir, driven
                        by the same load-generator process over gRPC (skipped with the reason if it cannot start).
Every level sends the same requests (128 by default, 1,024 texts), so that each runs long enough to reach
its steady state and every figure is on the same texts. The ceiling is one caller embedding all those
texts in one call (token-budget batches), measured in the same run, at its start and its end (the better
of the two); every throughput is printed as a ratio of it.
At concurrency 1 the server is run C1_ROUNDS times, each run followed by in-process batch-1 (one 8-sentence
request at a time to embedder.embed, also run once before the first): the reference for served p50 at
concurrency 1, both p50s over all their runs' requests, so that the machine's drift between the two counts
less than in one run of each.

    python benchmarks/serve_bench.py [--text-model EXPORT_DIR] [--requests 128] [--concurrency 1 4 16 64]
                                     [--no-triton] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from triton_bench import free_ports, run_round  # benchmarks/ is on sys.path when a script here runs

TEXTS_PER_REQUEST = 8
TARGET_RATIO_C16 = 0.90  # served throughput at C=16 against the ceiling
TARGET_P99_OVER_P50 = 3.0
TARGET_C1_P50_GAP_MS = 2.0


C1_ROUNDS = 3  # served C=1 runs, each followed by an in-process batch-1 run: the machine drifts less between the two


def drive(make_call, requests: list[list[str]], concurrency: int) -> dict:
    """Every request once from `concurrency` threads (triton_bench.run_round): throughput and latency percentiles."""
    wall, latencies = run_round(make_call, requests, concurrency)
    return summarize(concurrency, [x * 1000 for x in latencies], wall)


def summarize(concurrency: int, latencies_ms: list[float], wall: float) -> dict:
    lat = np.array(latencies_ms)
    return {"concurrency": concurrency, "requests": len(lat), "wall_s": wall, "texts_per_s": len(lat) * TEXTS_PER_REQUEST / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)), "latencies_ms": lat.tolist()}


def pooled(rows: list[dict]) -> dict:
    """Several runs of one level as one: their requests' latencies together, their walls summed."""
    merged = summarize(rows[0]["concurrency"], [x for r in rows for x in r["latencies_ms"]], sum(r["wall_s"] for r in rows))
    merged["client_cpu_ms_per_request"] = float(np.mean([r["client_cpu_ms_per_request"] for r in rows]))
    merged["runs"] = len(rows)
    return merged


# -- the load generator (its own process) -------------------------------------------------------------
class HttpCaller:
    """One client thread's keep-alive connection to `embedrt serve`; run_round closes it after the round.

    The standard library's http.client, not httpx: on this 2-core machine the load generator shares the
    cores with the server, and httpx spends several times the CPU a request (the tests use httpx and the
    openai client; here the client's CPU would be counted against the server).
    """

    def __init__(self, url: str) -> None:
        import http.client
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)

    def embed(self, texts: list[str]) -> None:
        body = json.dumps({"input": texts, "encoding_format": "base64"}).encode()
        self.connection.request("POST", "/v1/embeddings", body=body, headers={"Content-Type": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"embedrt serve answered {response.status}: {payload[:300]!r}")
        data = json.loads(payload)["data"]
        assert len(data) == len(texts) and len(base64.b64decode(data[0]["embedding"])) > 0

    def close(self) -> None:
        self.connection.close()


def client_main(args: argparse.Namespace) -> int:
    requests = json.loads(Path(args.requests_file).read_text())
    kind, _, target = args.client.partition("=")
    if kind == "http":
        make = lambda: HttpCaller(target).embed  # noqa: E731
    else:
        import embedrt

        make = lambda: embedrt.TritonEmbedder(target, "minilm", "grpc").embed  # noqa: E731
    concurrency = args.concurrency[0]
    drive(make, requests[:2], 1)  # untimed: the server's first requests
    cpu = time.process_time()
    result = drive(make, requests, concurrency)
    result["client_cpu_ms_per_request"] = (time.process_time() - cpu) * 1000 / len(requests)
    print(json.dumps(result))
    return 0


def run_client(kind: str, target: str, requests_file: Path, concurrency: int) -> dict:
    cmd = [sys.executable, __file__, "--client", f"{kind}={target}", "--requests-file", str(requests_file), "--concurrency", str(concurrency)]
    reply = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if reply.returncode != 0:
        raise RuntimeError(f"load generator failed: {reply.stderr[-2000:]}")
    return json.loads(reply.stdout.strip().splitlines()[-1])


# -- the contenders -----------------------------------------------------------------------------------
def start_serve(export_dir: Path, log: Path) -> tuple[subprocess.Popen, str]:
    import httpx

    port = free_ports(1)[0]
    embedrt_bin = str(Path(sys.executable).with_name("embedrt"))
    with open(log, "w") as out:
        # no 429 or 503 here: the benchmark measures throughput, not the limits
        proc = subprocess.Popen([embedrt_bin, "serve", str(export_dir), "--port", str(port), "--max-concurrent", "4096", "--request-timeout", "3600"],
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"embedrt serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("embedrt serve did not become healthy")


def workload(n_requests: int) -> list[list[str]]:
    from embedrt.sample_text import sample_sentences

    sentences = sample_sentences(n_requests * TEXTS_PER_REQUEST, seed=5, min_words=4, max_words=64)
    return [sentences[i : i + TEXTS_PER_REQUEST] for i in range(0, len(sentences), TEXTS_PER_REQUEST)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-model", help="text export dir (default: the bundled model, exported once)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--requests", type=int, default=128, help="requests each level sends (8 texts each), the same at every level")
    parser.add_argument("--no-triton", action="store_true")
    parser.add_argument("--out", help="write the figures as JSON here")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--requests-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        return client_main(args)

    import embedrt
    from embedrt.bench.machine import machine_conditions
    from embedrt.bench.models import text_model
    from embedrt.runtime.queue import TextQueue

    logging.getLogger("embedrt").setLevel(logging.ERROR)  # the workload's few over-long texts are cut alike everywhere
    export_dir = text_model(args.text_model)
    embedder = embedrt.TextEmbedder(export_dir)
    requests = workload(args.requests)
    everything = [t for r in requests for t in r]
    conditions = machine_conditions()
    conditions["uptime"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {conditions['cpu']} {conditions['cpu_flags']}, {conditions['usable_cpus']} usable cores; {conditions['uptime']}")
    print("note: other agents share this machine; figures move with their load.")

    def ceiling_run() -> float:
        start = time.perf_counter()
        embedder.embed(everything)
        return len(everything) / (time.perf_counter() - start)

    embedder.embed(everything[:64])  # warm

    def single_caller() -> list[float]:
        """Latencies (ms) of one caller sending the requests to embedder.embed, one at a time."""
        latencies = []
        for request in requests:
            start = time.perf_counter()
            embedder.embed(request)
            latencies.append((time.perf_counter() - start) * 1000)
        return latencies

    ceilings = [ceiling_run()]

    results: dict[str, list[dict]] = {}
    results["in-process threads"] = [drive(lambda: embedder.embed, requests, c) for c in args.concurrency]
    with TextQueue(embedder) as queue:
        # a lambda, not the bound method: run_round closes what a bound method belongs to
        results["in-process queue"] = [drive(lambda: lambda texts: queue.embed(texts), requests, c) for c in args.concurrency]

    with tempfile.TemporaryDirectory(prefix="embedrt-serve-bench-") as tmp:
        requests_file = Path(tmp) / "requests.json"
        requests_file.write_text(json.dumps(requests))
        proc, url = start_serve(export_dir, Path(tmp) / "serve.log")
        try:
            batch1 = [single_caller()]  # the reference for served C=1: before it, and after each of its runs
            served = []
            for c in args.concurrency:
                if c != 1:
                    served.append(run_client("http", url, requests_file, c))
                    continue
                runs = []
                for _ in range(C1_ROUNDS):
                    runs.append(run_client("http", url, requests_file, 1))
                    batch1.append(single_caller())
                served.append(pooled(runs))
            results["embedrt serve (HTTP)"] = served
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(120)
        if not args.no_triton:
            try:
                results["triton python backend (gRPC)"] = run_triton(export_dir, Path(tmp), requests_file, args.concurrency)
            except Exception as exc:  # noqa: BLE001 - the other figures stand; the reason is printed
                print(f"triton: skipped ({exc!r:.300})")

    ceilings.append(ceiling_run())  # again at the end: the best of the two is the ceiling, less exposed to the machine's other load
    ceiling = max(ceilings)
    print(f"ceiling: one caller, {len(everything)} texts in one embed call (token budget {embedder.max_batch_tokens}): "
          f"{ceiling:.1f} texts/s (best of {', '.join(f'{c:.1f}' for c in ceilings)}, at the start and at the end)")
    batch1_p50 = float(np.percentile(np.concatenate(batch1), 50)) if 1 in args.concurrency else None
    if batch1_p50 is not None:
        print(f"in-process batch-1 p50, before the served C=1 runs and after each of its {C1_ROUNDS}: {batch1_p50:.1f} ms "
              f"({', '.join(f'{np.percentile(b, 50):.1f}' for b in batch1)})")
    print(f"\n{'contender':32} {'C':>3} {'texts/s':>8} {'/ceiling':>8} {'p50 ms':>8} {'p99 ms':>8} {'p99/p50':>7} {'client CPU ms/req':>17}")
    for name, rows in results.items():
        for row in rows:
            row["ratio_to_ceiling"] = row["texts_per_s"] / ceiling
            row["p99_over_p50"] = row["p99_ms"] / row["p50_ms"] if row["p50_ms"] else None
            print(f"{name:32} {row['concurrency']:>3} {row['texts_per_s']:8.1f} {row['ratio_to_ceiling']:8.2f} "
                  f"{row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['p99_over_p50']:7.2f} {row.get('client_cpu_ms_per_request', float('nan')):17.2f}")
    served = {r["concurrency"]: r for r in results["embedrt serve (HTTP)"]}
    if 16 in served:
        print(f"\ntarget C=16: served / ceiling {served[16]['ratio_to_ceiling']:.2f} (>= {TARGET_RATIO_C16}), "
              f"p99/p50 {served[16]['p99_over_p50']:.2f} (<= {TARGET_P99_OVER_P50})")
    if 1 in served and batch1_p50 is not None:
        print(f"target C=1: served p50 {served[1]['p50_ms']:.1f} ms vs in-process batch-1 p50 {batch1_p50:.1f} ms: "
              f"gap {served[1]['p50_ms'] - batch1_p50:+.1f} ms (<= {TARGET_C1_P50_GAP_MS})")
    if args.out:
        Path(args.out).write_text(json.dumps({"conditions": conditions, "ceiling_texts_per_s": ceiling, "batch1_p50_ms": batch1_p50,
                                              "results": results}, indent=2))
    return 0


def run_triton(export_dir: Path, tmp: Path, requests_file: Path, concurrency: list[int]) -> list[dict]:
    from embedrt.triton.repository import build_repository
    from embedrt.triton.server import TritonServer

    repo = build_repository([export_dir], tmp / "repo", name="minilm")
    http, grpc, metrics = free_ports(3)
    with TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics) as server:
        return [run_client("triton", server.grpc_url, requests_file, c) for c in concurrency]


if __name__ == "__main__":
    sys.exit(main())
