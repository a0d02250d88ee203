"""What the checks on load cost: `embedrt.load` with verify="off" and "error", and the self-check alone.

Run: .venv/bin/python benchmarks/load_self_check.py EXPORT_DIR [EXPORT_DIR ...] [--rounds 7]
Prints the median of each over the rounds, interleaved, with the CPU and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import embedrt
from embedrt.runtime.engines.cpu import cpu_record, describe_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"CPU: {describe_cpu(cpu_record())}; load average {os.getloadavg()[0]:.2f}")
    for path in args.exports:
        embedrt.load(path, verify="off")  # page cache and first-import costs out of the way
        off, on, check = [], [], []
        for _ in range(args.rounds):
            start = time.perf_counter()
            embedrt.load(path, verify="off")
            off.append(time.perf_counter() - start)
            start = time.perf_counter()
            embedder = embedrt.load(path)
            on.append(time.perf_counter() - start)
            check.append(embedder.self_check["seconds"])
        report = embedder.self_check
        print(
            f"{path}: load {1000 * statistics.median(off):.0f} ms unchecked, {1000 * statistics.median(on):.0f} ms checked "
            f"(hashes + self-check; the self-check alone {1000 * statistics.median(check):.0f} ms on {report['n']} inputs, "
            f"min cosine {report['min_cosine']:.5f}, mean {report['mean_cosine']:.5f})"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
