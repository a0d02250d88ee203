"""Where an engine's time goes: ONNX Runtime's profiler over embedrt's own batches, summed by operator type.

A measurement, not a test. Embeds `--sentences` mixed-length sentences (the text-vs-st workload's inputs) with
the export's TextEmbedder, its session swapped for one with ONNX Runtime's profiler on (same session options),
and prints each operator type's share of the node time, the time spent outside the graph (tokenising,
batching, pooling in numpy), and the tokenising stage alone, for each export dir given.

    flock /tmp/embedrt-bench.lock python benchmarks/engine_profile.py EXPORT_DIR [EXPORT_DIR ...] [--sentences 2000]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime as ort

from embedrt.runtime.engines.session_options import session_options
from embedrt.runtime.text.embedder import TextEmbedder
from embedrt.sample_text import sample_sentences


def profile(export_dir: Path, texts: list[str], max_batch_tokens: int | None) -> None:
    embedder = TextEmbedder(export_dir, max_batch_tokens=max_batch_tokens)
    embedder.embed(texts[:64])  # warm-up: buffers and thread pools before the profiled pass
    tokenize = []
    for _ in range(3):
        start = time.perf_counter()
        embedder.tokenize(texts)
        tokenize.append(time.perf_counter() - start)
    plain = time.perf_counter()
    embedder.embed(texts)
    plain = time.perf_counter() - plain
    backend = embedder.backend
    with tempfile.TemporaryDirectory() as tmp:
        options = session_options()
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(tmp, "profile")
        backend.session = ort.InferenceSession(str(backend.model_path), sess_options=options, providers=["CPUExecutionProvider"])
        embedder.embed(texts[:64])
        start = time.perf_counter()
        embedder.embed(texts)
        wall = time.perf_counter() - start
        events = json.loads(Path(backend.session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    runs = 0.0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            runs += event["dur"]
    node_total = sum(by_op.values())
    print(f"\n{export_dir}: {len(texts)} sentences in {wall:.2f} s ({len(texts) / wall:.1f}/s, profiler on), "
          f"max_batch_tokens {embedder.max_batch_tokens}")
    print(f"  without the profiler: {plain:.2f} s ({len(texts) / plain:.1f}/s), of which tokenising (stage 1) {min(tokenize):.3f} s "
          f"({100 * min(tokenize) / plain:.1f}%): what overlapping it with the engine could save at most")
    print(f"  session runs {runs / 1e6:.2f} s of which nodes {node_total / 1e6:.2f} s; outside the session {wall - runs / 1e6:.2f} s")
    for op, us in by_op.most_common():
        print(f"  {op:32} {us / 1e6:7.3f} s {100 * us / node_total:5.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dirs", nargs="+", type=Path)
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--max-batch-tokens", type=int)
    args = parser.parse_args(argv)
    texts = sample_sentences(args.sentences, min_words=4, max_words=64, seed=1)
    print(f"load average {os.getloadavg()}")
    for export_dir in args.export_dirs:
        profile(export_dir, texts, args.max_batch_tokens)
    return 0


if __name__ == "__main__":
    sys.exit(main())
