"""The peers suite's record: results.json (every run, its conditions) and results.md (the table to read)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from embedrt.atomic_file import atomic_write_text
from embedrt.bench.report import busy_warning

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
# The versions a row names: the contender's own library and what runs the model under it.
VERSIONS_SHOWN = {
    "st-torch": ("sentence-transformers", "transformers", "torch"),
    "st-onnx": ("sentence-transformers", "transformers", "optimum-onnx", "onnxruntime"),
    "st-openvino": ("sentence-transformers", "transformers", "optimum-intel", "openvino", "nncf"),
    "fastembed": ("fastembed", "onnxruntime"),
    "embedrt": ("embedrt", "onnxruntime"),
}


def write_peers_report(document: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [atomic_write_text(out / RESULTS_JSON, json.dumps(document, indent=2) + "\n"),
            atomic_write_text(out / RESULTS_MD, peers_markdown(document))]


def read_peers_results(path: Path) -> dict[str, Any] | None:
    """An earlier results file of the suite in `path`, to merge a part into; None when there is none."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _num(value: Any, digits: int, suffix: str = "") -> str:
    return "–" if value is None else f"{value:.{digits}f}{suffix}"


def _versions(row: dict[str, Any]) -> str:
    found = row.get("versions", {})
    shown = VERSIONS_SHOWN.get(row.get("kind", ""), ())
    if row.get("details", {}).get("precision") == "bf16":  # embedrt's bf16 engine runs on OpenVINO, not ONNX Runtime
        shown = ("embedrt", "openvino")
    return ", ".join(f"{name} {found[name]}" for name in shown if name in found)


def peers_table(document: dict[str, Any]) -> str:
    lines_total = document["workload"]["lines"]
    head = ["contender", "texts/s", "× torch fp32", "batch-1 p50 ms", "× torch fp32", "min cosine", "mean cosine",
            "truncated lines", "batch", "versions"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in document["contenders"]:
        if row["status"] != "measured":
            continue
        truncated = "–" if row.get("truncated_inputs") is None else f"{row['truncated_inputs']} of {lines_total} (at {row['max_length']})"
        hint = row.get("details", {}).get("inference_precision")  # OpenVINO picks bf16 on a CPU with bf16 units
        hint = re.sub(r"^<Type: '(\w+)'>$", r"\1", hint) if hint else None  # recorded as str(openvino.Type) before it was named
        cells = [row["label"] + (f", precision hint {hint}" if hint else ""), _num(row.get("texts_per_s"), 1), _num(row.get("ratio"), 2, "x"), _num(row.get("p50_ms"), 2),
                 _num(row.get("p50_ratio"), 2, "x"), _num(row.get("cosine_min"), 4), _num(row.get("cosine_mean"), 4),
                 truncated, str(row.get("batch") or "–"), _versions(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def peers_markdown(document: dict[str, Any]) -> str:
    c, w = document["conditions"], document["workload"]
    parts = document.get("parts") or [{"started_at": document["started_at"], "load_average_at_start": c.get("load_average_at_start"),
                                       "load_average_at_end": c.get("load_average_at_end"), "contenders": [r["name"] for r in document["contenders"]]}]
    out = [
        f"# embedrt against the alternatives: {w['model']}",
        "",
        f"- CPU: {c['cpu']}; flags {', '.join(c['cpu_flags'])}; {c['usable_cpus']} usable CPUs; {w['threads']} threads in every contender",
        f"- Throughput: {w['lines']} mixed-length lines ({w['words_per_line']} words, {w['tokens_mean']} tokens on average, "
        f"{w['tokens_min']}-{w['tokens_max']}), embedded whole by each contender with its own batching",
        f"- Batch-1 latency: p50 over {w['latency_calls']} calls on short queries ({w['query_words']} words)",
        f"- Each contender in its own process, {document['rounds']} rounds of [torch fp32, contender] with torch fp32 on both sides; "
        "ratios are to the mean of the two neighbouring torch fp32 runs, medians over rounds",
        "- Accuracy: cosine of each contender's vectors against sentence-transformers torch fp32's over the whole workload",
    ]
    for part in parts:
        out.append(f"- Measured {part['started_at']}: load average {part.get('load_average_at_start')} at the start, "
                   f"{part.get('load_average_at_end')} at the end ({', '.join(part.get('contenders', []))})")
    warning = busy_warning(document)
    if warning:
        out.append(f"- **{warning}**")
    out += ["", peers_table(document)]
    skipped = [r for r in document["contenders"] if r["status"] != "measured"]
    if skipped:
        out += ["Skipped:", ""] + [f"- {r['label']} ({r['name']}): {r['reason']}" for r in skipped] + [""]
    return "\n".join(out)
