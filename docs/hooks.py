"""MkDocs hook: the benchmark pages' figures come from the committed baseline, never pasted by hand.

`<!-- generated: baseline-conditions -->` becomes the machine and run the baseline was measured on;
`<!-- generated: baseline-table -->` becomes its full table (embedrt.bench.report.table, the same
function that writes bench-out/results.md). A page naming a marker that does not exist fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

from embedrt.bench.report import table

BASELINE = Path(__file__).resolve().parent.parent / "benchmarks" / "baseline-python-cpu.json"
_MARKER = re.compile(r"<!-- generated: (?P<name>[\w-]+) -->")


def conditions(document: dict) -> str:
    """The machine, versions and load of a bench run, as a Markdown list."""
    c, r = document["conditions"], document["roofline"]
    versions = ", ".join(f"{k} {v}" for k, v in c["versions"].items())
    return "\n".join([
        f"- **CPU**: {c['cpu']}, {c['usable_cpus']} usable cores, flags {', '.join(c['cpu_flags'])}; "
        f"{c['memory_gib']} GiB; GPU: {', '.join(c['gpus']) or 'none'}",
        f"- **GEMM peak** measured in the run: fp32 {r['fp32_peak_gflops']} GFLOP/s, int8 {r['int8_peak_gops']} GOP/s"
        + ("" if "runs" in r else " (measured before the roofline was corrected: [why it understates the peak](#the-roofline-what-of-peak-divides-by))"),
        f"- **Load average** (1, 5, 15 min) at start {c['load_average_at_start']}, at end {c['load_average_at_end']}",
        f"- **Run**: suite `{document['suite']}`{' (quick)' if document.get('quick') else ''}, started {document['started_at']}, "
        f"{document['duration_s']} s; Python {c['python']}",
        f"- **Versions**: {versions}",
    ]) + "\n"


GENERATED = {"baseline-conditions": conditions, "baseline-table": table}


def on_page_markdown(markdown: str, page, config, files) -> str:
    names = set(_MARKER.findall(markdown))
    if not names:
        return markdown
    unknown = names - set(GENERATED)
    if unknown:
        raise PluginError(f"{page.file.src_path}: unknown generated block(s) {sorted(unknown)}; known: {sorted(GENERATED)}")
    document = json.loads(BASELINE.read_text(encoding="utf-8"))
    return _MARKER.sub(lambda m: GENERATED[m["name"]](document), markdown)
