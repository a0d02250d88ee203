"""Issue 14's measurement: the two-tower example's user and item towers, embedrt (fp32, int8) vs PyTorch eager, in one run.

Throughput (rows/s at the median call) on batches of BATCH rows and batch-1 latency (p50, p95), calls interleaved
between contenders (embedrt.bench.timing). Both get the same dict of numpy columns a service would hand them:
PyTorch's call includes making its tensors (flat history + offsets), embedrt's its checks. Both run with as many
threads as ONNX Runtime's default (the physical cores) and with one; the ratios are against the faster PyTorch.

    python benchmarks/features_bench.py [--batch 512] [--calls 40] [--latency-calls 200] [--hidden 64] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # the two_tower example

import numpy as np
import torch

import embedrt
from embedrt.bench.machine import load_average, machine_conditions
from embedrt.bench.timing import interleave, summarize
from embedrt.export.features.exporter import export_module
from embedrt.runtime.engines.session_options import physical_cores
from two_tower.data import make_interactions
from two_tower.model import ItemTower, UserTower
from two_tower.train import history_tensors


def user_tensors(rows: dict) -> tuple:
    history, offsets = history_tensors(list(rows["history"]))
    return torch.as_tensor(rows["user_id"]), history, offsets, torch.as_tensor(rows["age"]), torch.as_tensor(rows["activity"])


def item_tensors(rows: dict) -> tuple:
    return torch.as_tensor(rows["item_id"]), torch.as_tensor(rows["category"]), torch.as_tensor(rows["price"])


def take(rows: dict, idx: np.ndarray) -> dict:
    return {k: [v[i] for i in idx] if isinstance(v, list) else v[idx] for k, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512, help="rows per call in the throughput runs")
    parser.add_argument("--calls", type=int, default=40, help="timed calls per contender, throughput")
    parser.add_argument("--latency-calls", type=int, default=200, help="timed batch-1 calls per contender")
    parser.add_argument("--hidden", type=int, default=64, help="width of the towers' MLP (the example trains 64)")
    parser.add_argument("--json", type=Path, help="write the figures and conditions here")
    args = parser.parse_args()

    cores = physical_cores()  # the cores ONNX Runtime's sessions use
    torch.manual_seed(0)
    data = make_interactions()
    rng = np.random.default_rng(0)
    towers = {
        "user": (UserTower(hidden=args.hidden).eval(), data.user_rows(), user_tensors, len(data.train)),
        "item": (ItemTower(hidden=args.hidden).eval(), data.item_rows(), item_tensors, len(data.items["item_id"])),
    }
    conditions = machine_conditions()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (module, rows, to_tensors, n) in towers.items():
            example = take(rows, np.arange(64))
            dirs = {p: export_module(module, Path(tmp) / f"{name}-{p}", example, precision=p) for p in ("fp32", "int8")}
            engines = {f"embedrt {p}": embedrt.load(d) for p, d in dirs.items()}
            engines |= {f"embedrt {p} 1thr": embedrt.load(d, session={"intra_op_threads": 1}) for p, d in dirs.items()}
            for batch, calls in ((args.batch, args.calls), (1, args.latency_calls)):
                batches = [take(rows, rng.integers(0, n, size=batch)) for _ in range(calls)]
                def pytorch(b, threads, module=module, to_tensors=to_tensors):
                    torch.set_num_threads(threads)
                    with torch.no_grad():
                        return module(*to_tensors(b))

                runs = {
                    f"pytorch {cores}thr": lambda b: pytorch(b, cores), "pytorch 1thr": lambda b: pytorch(b, 1),
                    **{k: e.embed for k, e in engines.items()},
                }
                seconds = interleave(runs, batches, warmup=batches[:3], block=10)
                # The baseline is PyTorch's better thread setting: on a loaded machine one thread can beat two.
                base = max((summarize(seconds[k], batch) for k in runs if k.startswith("pytorch")), key=lambda f: f["items_per_s"])
                for contender, s in seconds.items():
                    figures = summarize(s, batch)
                    results.append({
                        "tower": name, "batch": batch, "contender": contender, **figures,
                        "throughput_x": figures["items_per_s"] / base["items_per_s"], "p50_x": figures["p50_ms"] / base["p50_ms"],
                    })
    conditions["load_average_at_end"] = load_average()
    print(f"towers with a {args.hidden}-wide MLP, {args.batch} rows a call for throughput")
    print(f"{conditions['cpu']} ({', '.join(conditions['cpu_flags'])}), {conditions['usable_cpus']} cores used; "
          f"load average {conditions['load_average_at_start']} at start, {conditions['load_average_at_end']} at end")
    print(f"{'tower':<6}{'batch':>6}  {'contender':<20}{'rows/s':>12}{'p50 ms':>10}{'p95 ms':>10}{'vs best PyTorch':>16}")
    for r in results:
        ratio = f"{r['throughput_x']:.2f}x" if r["batch"] > 1 else f"{r['p50_x']:.2f}x p50"
        print(f"{r['tower']:<6}{r['batch']:>6}  {r['contender']:<20}{r['items_per_s']:>12.0f}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{ratio:>16}")
    if args.json:
        args.json.write_text(json.dumps({"conditions": conditions, "results": results}, indent=2))


if __name__ == "__main__":
    main()
