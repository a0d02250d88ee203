"""Results as JSON (the record), a Markdown table (to read) and a PNG plot (to see), written to --out DIR."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from embedrt.atomic_file import atomic_write, atomic_write_text
from embedrt.errors import EmbedrtError

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RESULTS_PNG = "results.png"


def write_report(document: dict[str, Any], out: Path) -> list[Path]:
    """results.json, results.md and (when matplotlib is installed) results.png in `out`; each written whole or not at all."""
    out.mkdir(parents=True, exist_ok=True)
    written = [atomic_write_text(out / RESULTS_JSON, json.dumps(document, indent=2) + "\n"),
               atomic_write_text(out / RESULTS_MD, markdown(document))]
    png = plot(document, out / RESULTS_PNG)
    if png is not None:
        written.append(png)
    return written


def read_results(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EmbedrtError(f"{path}: no such results file; write one with `embedrt bench --out DIR` (DIR/{RESULTS_JSON}).") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EmbedrtError(f"{path}: not a readable results file ({exc}).") from exc
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise EmbedrtError(f"{path}: not an embedrt bench results file (no 'results' list); give the results.json that `embedrt bench` wrote.")
    return document


# -- Markdown -------------------------------------------------------------------------------------------
def _fmt(value: Any, digits: int = 1, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}{suffix}"


def baselines_of(document: dict[str, Any]) -> list[str]:
    keys: dict[str, None] = {}
    for result in document["results"]:
        for row in result["engines"]:
            if row["role"] == "baseline":
                keys[row["key"]] = None
    return list(keys)


def table(document: dict[str, Any]) -> str:
    """One row per workload and engine: latency, throughput, ratios to every baseline, roofline fraction."""
    bases = baselines_of(document)
    head = ["workload", "engine", "p50 ms", "p95 ms", "p99 ms", "items/s"]
    head += [f"speedup vs {b.replace('_', ' ')}" for b in bases] + [f"p50 ratio vs {b.replace('_', ' ')}" for b in bases]
    head += ["GFLOP/s", "% of peak"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for result in document["results"]:
        for row in result["engines"]:
            engine = row["engine"] + (" (suspect: see below)" if row.get("suspect") else "")
            cells = [result["name"], engine, _fmt(row["p50_ms"], 2), _fmt(row["p95_ms"], 2), _fmt(row["p99_ms"], 2), _fmt(row["items_per_s"], 1)]
            cells += [_fmt(row.get(f"speedup_vs_{b}"), 2, "x") for b in bases]
            cells += [_fmt(row.get(f"p50_latency_ratio_vs_{b}"), 2, "x") for b in bases]
            fraction = row.get("roofline_fraction")
            cells += [_fmt(row.get("achieved_gflops"), 1), _fmt(None if fraction is None else 100 * fraction, 0, "%")]
            lines.append("| " + " | ".join(cells) + " |")
    lines += [f"\nwarning: {line}" for line in document.get("warnings", [])]
    return "\n".join(lines) + "\n"


def markdown(document: dict[str, Any]) -> str:
    c = document["conditions"]
    r = document["roofline"]
    versions = ", ".join(f"{k} {v}" for k, v in c.get("versions", {}).items())
    lines = [
        f"# embedrt bench: {document['suite']}{' (quick)' if document.get('quick') else ''}",
        "",
        f"- machine: {c['cpu']}, {c['usable_cpus']} usable CPUs, flags {' '.join(c['cpu_flags'])}, "
        f"{c.get('memory_gib')} GiB, GPU: {', '.join(c['gpus']) or 'none'}",
        f"- load average at start / end: {c.get('load_average_at_start')} / {c.get('load_average_at_end')}",
        f"- versions: {versions}",
        *roofline_lines(r),
        f"- started {document['started_at']}, took {document['duration_s']} s",
        *([f"- **{busy_warning(document)}**"] if busy_warning(document) else []),
        *[f"- not measured: {line}" for line in document.get("skipped", [])],
        "",
        table(document),
        "How to read it: embedrt and its baselines ran the same inputs in one process, in turn (throughput call by call, latency in blocks of 10 calls).",
        "`speedup vs X` = embedrt items/s ÷ X's items/s (above 1: embedrt is faster); `p50 ratio vs X` = embedrt p50",
        "latency ÷ X's (below 1: embedrt answers sooner). Ratios hold across runs on a shared machine; absolute",
        "times move with its load. `% of peak` = achieved FLOP/s ÷ the GEMM peak above (int8 engines against the",
        "int8 peak); FLOPs count real tokens, not padding (MiniLM-L6: about 22 MFLOP per token; ResNet-50: 8.2 GFLOP",
        "= 4.1 GMAC per image). Latency workloads embed one input per call; throughput workloads time calls of",
        "`items_per_call` inputs at the given batch size (`budget`: embedrt's token budget vs the baseline's default batch).",
        "",
    ]
    return "\n".join(lines)


def roofline_lines(r: dict[str, Any]) -> list[str]:
    """The GEMM peak with what decides it: the kernels (numpy's BLAS core type, the environment that picks it),
    how it was measured, and which figures other processes understated."""
    int8 = f", int8 {r['int8_peak_gops']} GOP/s (ONNX Runtime, dynamic int8 as the engines run it)" if r.get("int8_peak_gops") else ""
    how = f"{r['gemm_size']}^3, best of {r['repeats']}" + (f" after {r['warmups']} warm-ups, B an initializer" if r.get("warmups") else "")
    lines = [f"- GEMM peak measured in this run ({how}): fp32 {r['fp32_peak_gflops']} GFLOP/s{int8}"]
    if r.get("runs"):
        figures = ", ".join(f"{name} {run['best']} (median {run['median']}, spread {run['spread_pct']}%)" for name, run in r["runs"].items())
        lines.append(f"- GEMMs, G(FL)OP/s: {figures}")
    blas = r.get("blas", {})
    if blas:
        env = " ".join(f"{k}={v}" for k, v in r.get("env", {}).items()) or "no kernel or thread variables set"
        kernel = blas.get("unknown") or f"{blas.get('internal_api')} {blas.get('version')}, {blas.get('architecture')} kernel, {blas.get('num_threads')} threads"
        lines.append(f"- numpy's BLAS: {kernel}; environment: {env}")
    if r.get("gpu_fp16_peak_gflops"):
        lines.append(f"- GPU: {r.get('gpu_name', 'unnamed')}, GEMM peak measured by torch in this run: fp16 {r['gpu_fp16_peak_gflops']} GFLOP/s, "
                     f"fp32 {r.get('gpu_fp32_peak_gflops')} GFLOP/s (`% of peak` of GPU rows is against these)")
    lines += [f"- **GEMM {name}: {why}**" for name, why in r.get("busy", {}).items()]
    return lines


def busy_warning(document: dict[str, Any]) -> str | None:
    """A run on a machine busier than its cores is not a figure to publish or to gate on."""
    c = document["conditions"]
    loads = [x for key in ("load_average_at_start", "load_average_at_end") for x in c.get(key, [])[:1]]
    cpus = c.get("usable_cpus") or 1
    if loads and max(loads) > 1.5 * cpus:
        return (f"the machine was busy (1-minute load average {max(loads)} on {cpus} CPUs): other work competed for "
                "the cores, which hurts PyTorch's OpenMP threads more than ONNX Runtime's; re-run on a quiet machine")
    return None


# -- plot -----------------------------------------------------------------------------------------------
def plot(document: dict[str, Any], path: Path) -> Path | None:
    """Throughput vs batch size, latency vs sequence length, and images/s: embedrt against the baselines."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    results = document["results"]
    by_batch = [r for r in results if r["modality"] == "text" and r["kind"] == "throughput" and r["inputs"] == "mixed" and r["batch"]]
    by_length = [r for r in results if r["modality"] == "text" and r["kind"] == "latency" and r["batch"] == 1 and r["inputs"] != "mixed"]
    images = [r for r in results if r["modality"] == "image"]
    panels = [p for p in (("batch", by_batch), ("length", by_length), ("image", images)) if p[1]]
    if not panels:  # a suite without sweeps (text-vs-st): items/s of each workload
        panels = [("other", results)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (kind, rows) in zip(axes[0], panels):
        if kind == "batch":
            _lines(ax, sorted(rows, key=lambda r: r["batch"]), lambda r: r["batch"], "items_per_s")
            ax.set(xscale="log", xlabel="batch size (mixed-length sentences)", ylabel="sentences / s", title="Text throughput vs batch size")
        elif kind == "length":
            rows = sorted(rows, key=lambda r: r["lengths"]["tokens_mean"])
            _lines(ax, rows, lambda r: r["lengths"]["tokens_mean"], "p50_ms")
            ax.set(xscale="log", yscale="log", xlabel="tokens per text", ylabel="p50 latency, batch 1 (ms)", title="Text latency vs sequence length")
        elif kind == "image":
            _bars(ax, rows, "images / s", "ResNet-50 throughput", lambda r: f"batch {r['batch']}")
        else:
            _bars(ax, rows, "items / s", "Throughput by workload", lambda r: r["name"].split("/", 1)[1])
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


def _lines(ax: Any, rows: list[dict[str, Any]], x_of, metric: str) -> None:
    """One line per engine label (the 512-token model's engines carry the same labels as the bundled model's)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        for e in r["engines"]:
            series.setdefault(e["engine"], []).append((x_of(r), e[metric]))
    for name, points in series.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", linestyle="-" if name.startswith("embedrt") else "--", label=name)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _bars(ax: Any, rows: list[dict[str, Any]], ylabel: str, title: str, tick: Any) -> None:
    names = list(dict.fromkeys(e["engine"] for r in rows for e in r["engines"]))
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [next((e["items_per_s"] for e in r["engines"] if e["engine"] == name), 0.0) for r in rows]
        ax.bar([j + i * width for j in range(len(rows))], values, width, label=name)
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(len(rows))], [tick(r) for r in rows])
    ax.set(ylabel=ylabel, yscale="log", title=title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
