"""Long documents: time and peak memory of `embed([doc], long_text="chunk")` against document length.

Each length runs in a fresh process (peak RSS is per process): load the model, warm it up on a
short chunked document, then embed one sample_document of N words. The baseline, in the same
process and interleaved, embeds the very same windows as plain texts (embed(window_texts)), so
the ratio is what windowing and aggregation cost on top of the forward passes.

    python benchmarks/long_document.py [MODEL] [--words 5000 20000 100000] [--scaling-only] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure_one(model: str, words: int, baseline: bool) -> dict:
    import embedrt
    from embedrt.sample_text import sample_document

    embedder = embedrt.load(model)
    embedder.embed([sample_document(2000, seed=1)], long_text="chunk")  # warm-up: ORT arenas reach their working size
    from embedrt.runtime.text.chunking import _plan_chunked

    doc = sample_document(words)
    start = time.perf_counter()
    _plan_chunked(embedder, [doc], None, None)  # tokenise in pieces + cut windows: everything but the forward passes
    plan_s = time.perf_counter() - start
    rss_before = _rss_mb()
    start = time.perf_counter()
    _, windows = embedder.embed([doc], long_text="chunk", return_windows=True)
    chunked = time.perf_counter() - start
    record = {
        "words": words,
        "chars": len(doc),
        "windows": int(len(windows[0].spans)),
        "tokens_embedded": int(windows[0].token_counts.sum()),
        "chunked_s": round(chunked, 3),
        "tokenise_and_window_s": round(plan_s, 3),
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(_rss_mb(), 1),
    }
    if baseline:  # interleaved with the chunked run, best of 2 each
        texts = [doc[a:b] for a, b in windows[0].spans]
        plain = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            embedder.embed(texts)
            plain = min(plain, time.perf_counter() - start)
            start = time.perf_counter()
            embedder.embed([doc], long_text="chunk")
            chunked = min(chunked, time.perf_counter() - start)
        record["chunked_s"] = round(chunked, 3)
        record["baseline_windows_as_texts_s"] = round(plain, 3)
        record["ratio_chunked_over_baseline"] = round(chunked / plain, 3)
    return record


def tokenise_and_window_scaling(model: str, sizes: list[int], repeats: int = 3) -> list[dict]:
    """Everything but the forward passes, sizes interleaved and repeated in one process, best of `repeats`."""
    import embedrt
    from embedrt.runtime.text.chunking import _plan_chunked
    from embedrt.sample_text import sample_document

    embedder = embedrt.load(model)
    docs = {words: sample_document(words) for words in sizes}
    best = {words: float("inf") for words in sizes}
    for _ in range(repeats):
        for words in sizes:
            start = time.perf_counter()
            _plan_chunked(embedder, [docs[words]], None, None)
            best[words] = min(best[words], time.perf_counter() - start)
    return [{"words": w, "tokenise_and_window_s": round(best[w], 4), "s_per_1k_words": round(best[w] / w * 1000, 5)} for w in sizes]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default="default")
    parser.add_argument("--words", type=int, nargs="+", default=[5000, 20000, 100000])
    parser.add_argument("--baseline-up-to", type=int, default=20000, help="run the baseline for lengths up to this many words")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None)
    parser.add_argument("--scaling-only", action="store_true", help="only time tokenising and windowing (no forward passes)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.model, args.one, args.one <= args.baseline_up_to)))
        return
    scaling = tokenise_and_window_scaling(args.model, args.words)
    for row in scaling:
        print(json.dumps({"tokenise_and_window": row}), flush=True)
    rows = []
    for words in ([] if args.scaling_only else args.words):
        child = subprocess.run(
            [sys.executable, __file__, args.model, "--one", str(words), "--baseline-up-to", str(args.baseline_up_to)],
            check=True, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        row = rows[-1]
        row["s_per_1k_words"] = round(row["chunked_s"] / words * 1000, 3)
        print(json.dumps(row), flush=True)
    import embedrt

    result = {
        "benchmark": "long_document",
        "model": args.model,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "embedrt": embedrt.__version__,
        "tokenise_and_window_scaling": scaling,
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
