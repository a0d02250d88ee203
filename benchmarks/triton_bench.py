"""Issue 5's measurement: the bundled text model served by a local tritonserver (python backend, gRPC)
against in-process embedrt on the same requests, at concurrency 1, 4 and 16, interleaved round by round.

Each request is `--texts` sentences from embedrt.sample_text. A round sends every request once, from
C client threads; in-process, the same C threads call one TextEmbedder. Rounds alternate between the
contenders (the order rotates), so machine noise hits both alike. Reported per contender and C:
throughput (texts/s, median round), request latency p50/p99 (ms, all rounds), and the served /
in-process throughput ratio (target at C=16: >= 0.70).

    python benchmarks/triton_bench.py [--text-model EXPORT_DIR] [--rounds 3] [--requests 64] [--out DIR]
                                      [--perf-analyzer PATH]

`--perf-analyzer` also runs NVIDIA's perf_analyzer on the encoder with token ids (the binary of the
tritonclient==2.51.0 wheel; it needs libb64.so.0d and libcudart.so.12 from the nvidia-pytriton wheel,
which this script puts on its library path).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

import embedrt
from embedrt.bench.machine import machine_conditions
from embedrt.bench.models import text_model
from embedrt.sample_text import sample_sentences
from embedrt.triton.repository import build_repository
from embedrt.triton.server import TritonServer, pytriton_dist

TARGET_RATIO = 0.70


def free_ports(n: int) -> list[int]:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_round(make_embed, requests: list[list[str]], concurrency: int) -> tuple[float, list[float]]:
    """Wall seconds for all requests from `concurrency` threads, and each request's latency (s)."""
    work: queue.Queue = queue.Queue()
    for r in requests:
        work.put(r)
    latencies: list[float] = []
    lock = threading.Lock()
    embeds = [make_embed() for _ in range(concurrency)]  # one client per thread (connections made before timing)
    barrier = threading.Barrier(concurrency + 1)
    errors: list[BaseException] = []

    def worker(embed) -> None:
        barrier.wait()
        while True:
            try:
                texts = work.get_nowait()
            except queue.Empty:
                return
            start = time.perf_counter()
            try:
                embed(texts)
            except BaseException as exc:  # reported after the round
                errors.append(exc)
                return
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(e,)) for e in embeds]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    for e in embeds:
        getattr(getattr(e, "__self__", None), "close", lambda: None)()
    if errors:
        raise errors[0]
    return wall, latencies


def perf_analyzer(binary: str, server: TritonServer, local, sentences: list[str], concurrency: list[int], length: int, batch: int) -> str:
    """NVIDIA's load generator on NAME_encoder, fed real token ids (sentences of at most `length` tokens, padded to it)."""
    from embedrt.runtime.text.tokenization import pad_batch

    encoded = local.tokenize(sentences)
    fits = np.flatnonzero(encoded.lengths <= length)[:256]
    padded = pad_batch(encoded, fits, local.backend.input_names, 0, length)
    data = {"data": [{n: {"content": padded[n][row].tolist(), "shape": [length]} for n in padded} for row in range(len(fits))]}
    inputs = Path(tempfile.gettempdir()) / "embedrt-pa-input.json"
    inputs.write_text(json.dumps(data))
    libs = str(pytriton_dist().parent.parent / "nvidia_pytriton.libs")
    plain = Path(tempfile.gettempdir()) / "embedrt-pa-libs"
    _link_versioned_libs(Path(libs), plain)
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join([str(plain), libs, os.environ.get("LD_LIBRARY_PATH", "")]))
    report = []
    for c in concurrency:  # one run per level: a range would step through every level in between
        cmd = [binary, "-m", "minilm_encoder", "-u", server.grpc_url, "-i", "grpc", "-b", str(batch), f"--input-data={inputs}",
               f"--concurrency-range={c}:{c}", "--measurement-interval=5000", "--percentile=99",
               "--stability-percentage=30", "--max-trials=6"]
        reply = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        summary = [line for line in reply.stdout.splitlines() if line.startswith("Concurrency:")]
        report.append("\n".join(summary) or reply.stdout[-1500:] + f"\n(perf_analyzer exited {reply.returncode}: {reply.stderr[-1000:]})")
    return "\n".join(report) + "\n"


def _link_versioned_libs(libs: Path, out: Path) -> None:
    """The wheel's libraries carry hashed names (libb64-98cb6333.so.0d); perf_analyzer asks for the plain ones."""
    out.mkdir(exist_ok=True)
    for plain, prefix in (("libb64.so.0d", "libb64-"), ("libcudart.so.12", "libcudart-")):
        found = sorted(libs.glob(prefix + "*"))
        if found and not (out / plain).exists():
            (out / plain).symlink_to(found[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text-model", help="text export dir (default: the bundled model, exported once)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=64, help="requests per round")
    parser.add_argument("--texts", type=int, default=8, help="sentences per request")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender and concurrency")
    parser.add_argument("--out", default="bench-out/triton", help="dir for results.json and results.md")
    parser.add_argument("--perf-analyzer", metavar="PATH", help="perf_analyzer binary (tritonclient==2.51.0 wheel)")
    parser.add_argument("--perf-analyzer-only", action="store_true", help="skip the interleaved rounds")
    args = parser.parse_args(argv)

    export_dir = text_model(args.text_model)
    sentences = sample_sentences(args.requests * args.texts, seed=5, min_words=4, max_words=64)
    requests = [sentences[i : i + args.texts] for i in range(0, len(sentences), args.texts)]
    local = embedrt.TextEmbedder(export_dir)
    conditions = machine_conditions()
    with tempfile.TemporaryDirectory(prefix="embedrt-triton-bench-") as tmp:
        repo = build_repository([export_dir], Path(tmp) / "repo", name="minilm")
        http, grpc, metrics = free_ports(3)
        with TritonServer(repo, http_port=http, grpc_port=grpc, metrics_port=metrics) as server:
            contenders = {
                "embedrt in-process": lambda: local.embed,
                "triton grpc (strings -> ensemble)": lambda: embedrt.TritonEmbedder(server.grpc_url, "minilm", "grpc").embed,
                "triton grpc (client tokens -> encoder)": lambda: embedrt.TritonEmbedder(server.grpc_url, "minilm", "grpc", path=export_dir).embed,
            }
            served = embedrt.TritonEmbedder(server.grpc_url, "minilm", "grpc")
            parity = float((served.embed(sentences[:64]) * local.embed(sentences[:64])).sum(1).min())
            served.close()
            for make in contenders.values():  # warm-up: sessions, connections, server-side first batches
                run_round(make, requests[:8], 2)
            rows = []
            for c in [] if args.perf_analyzer_only else args.concurrency:
                walls = {name: [] for name in contenders}
                lats = {name: [] for name in contenders}
                names = list(contenders)
                for r in range(args.rounds):
                    for name in names[r % len(names):] + names[: r % len(names)]:
                        wall, latencies = run_round(contenders[name], requests, c)
                        walls[name].append(wall)
                        lats[name].extend(latencies)
                        time.sleep(0.05)
                for name in names:
                    ms = np.asarray(lats[name]) * 1e3
                    rows.append({
                        "contender": name, "concurrency": c,
                        "texts_per_s": len(sentences) / float(np.median(walls[name])),
                        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
                    })
                base = next(x for x in rows if x["concurrency"] == c and x["contender"] == names[0])["texts_per_s"]
                for x in rows:
                    if x["concurrency"] == c:
                        x["ratio_vs_in_process"] = x["texts_per_s"] / base
                print(f"concurrency {c} done", file=sys.stderr, flush=True)
            pa_output = perf_analyzer(args.perf_analyzer, server, local, sentences, args.concurrency, 64, args.texts) if args.perf_analyzer else None
    document = {
        "benchmark": "triton vs in-process", "model": str(export_dir), "requests_per_round": args.requests,
        "texts_per_request": args.texts, "rounds": args.rounds, "triton_min_cosine_vs_local": parity,
        "target": f"strings -> ensemble at concurrency {max(args.concurrency)} >= {TARGET_RATIO:.0%} of in-process",
        "conditions": conditions, "results": rows, "perf_analyzer": pa_output,
    }
    lines = ["| contender | concurrency | texts/s | p50 ms | p99 ms | vs in-process |", "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {x['contender']} | {x['concurrency']} | {x['texts_per_s']:.1f} | {x['p50_ms']:.1f} | {x['p99_ms']:.1f} | {x['ratio_vs_in_process']:.2f} |" for x in rows]
    top = max(args.concurrency)
    ratios = [x["ratio_vs_in_process"] for x in rows if x["concurrency"] == top and x["contender"].startswith("triton grpc (strings")]
    if ratios:
        lines.append(f"\nserved/in-process throughput at concurrency {top}: {ratios[0]:.2f} (target >= {TARGET_RATIO:.2f}: {'met' if ratios[0] >= TARGET_RATIO else 'MISSED'}); "
                     f"min cosine Triton vs local {parity:.7f}; load average at start {conditions.get('load_average_at_start')}")
    if pa_output:
        lines += ["\nperf_analyzer (minilm_encoder, token ids of length 64, batch %d):\n```\n%s```" % (args.texts, pa_output)]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
