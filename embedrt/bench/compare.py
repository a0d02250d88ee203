"""The regression gate: ratios of this run against a recorded baseline's, never absolute times.

A ratio (embedrt vs a baseline measured in the same run) survives a noisy or different machine
far better than seconds do. A workload regressed when one of its ratios got worse by more than
the threshold: a speedup fell, or a latency ratio rose.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from embedrt.errors import EmbedrtError

# ratio field -> True when higher is better
RATIO_FIELDS = {"speedup_vs_": True, "p50_latency_ratio_vs_": False}


@dataclass(frozen=True)
class Change:
    workload: str
    engine: str
    field: str
    baseline: float
    current: float

    @property
    def higher_is_better(self) -> bool:
        return next(better for prefix, better in RATIO_FIELDS.items() if self.field.startswith(prefix))

    @property
    def change(self) -> float:
        """Relative change in the good direction: -0.12 means 12% worse, +0.05 means 5% better."""
        if self.higher_is_better:
            return self.current / self.baseline - 1.0
        return self.baseline / self.current - 1.0

    def describe(self) -> str:
        word = "better" if self.change >= 0 else "worse"
        return (f"{self.workload} [{self.engine}] {self.field}: {self.baseline:.3f} -> {self.current:.3f} "
                f"({abs(self.change) * 100:.1f}% {word})")


@dataclass
class Comparison:
    threshold: float
    changes: list[Change]
    missing: list[str]  # workload [engine] in the baseline but not in this run

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.change < -self.threshold]

    @property
    def regressed_workloads(self) -> list[str]:
        return list(dict.fromkeys(c.workload for c in self.regressions))

    def summary(self) -> str:
        lines = [f"compared {len(self.changes)} ratios against the baseline (max regression {self.threshold * 100:.0f}%)"]
        for c in self.changes:
            mark = "REGRESSED" if c in self.regressions else "ok"
            lines.append(f"  {mark:9} {c.describe()}")
        for m in self.missing:
            lines.append(f"  {'missing':9} {m}: in the baseline, not measured in this run")
        if self.regressions:
            lines.append(f"regressed beyond {self.threshold * 100:.0f}%: {', '.join(self.regressed_workloads)}")
        else:
            lines.append("no workload regressed beyond the threshold")
        return "\n".join(lines)


def parse_threshold(text: str) -> float:
    """'10%', '10' or '0.1' -> 0.1."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(%?)\s*", str(text))
    if not match:
        raise EmbedrtError(f"--max-regression {text!r}: give a percentage such as 10% (or a fraction such as 0.1).")
    value = float(match.group(1))
    fraction = value / 100 if match.group(2) or value >= 1 else value
    if not 0 <= fraction < 1:
        raise EmbedrtError(f"--max-regression {text!r}: must be between 0% and 100%.")
    return fraction


def _ratios(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    found = {}
    for result in document["results"]:
        for row in result["engines"]:
            fields = {k: float(v) for k, v in row.items() if any(k.startswith(p) for p in RATIO_FIELDS) and v}
            if fields:
                found[(result["name"], row["engine"])] = fields
    return found


def check_same_cpu(current: dict[str, Any], baseline: dict[str, Any]) -> None:
    """Ratios move with the instruction set (int8 gains little without VNNI): runs from CPUs with other flags are not compared."""
    now, before = current.get("conditions", {}), baseline.get("conditions", {})
    if "cpu_flags" not in now or "cpu_flags" not in before:
        return
    if set(now["cpu_flags"]) != set(before["cpu_flags"]):
        raise EmbedrtError(
            f"the baseline was measured on {before.get('cpu', 'an unnamed CPU')} ({' '.join(before['cpu_flags'])}) and this run on "
            f"{now.get('cpu', 'an unnamed CPU')} ({' '.join(now['cpu_flags'])}): their instruction sets differ, so their ratios "
            "are not comparable and a difference would be a false regression. Compare against a baseline recorded on a CPU of "
            "this kind (`embedrt bench --out DIR` here, then keep DIR/results.json as the baseline)."
        )


def compare_results(current: dict[str, Any], baseline: dict[str, Any], threshold: float) -> Comparison:
    """Every ratio the two runs share, workload by workload and engine by engine; refused across instruction sets."""
    check_same_cpu(current, baseline)
    now, before = _ratios(current), _ratios(baseline)
    changes = [Change(workload, engine, name, value, now[(workload, engine)][name])
               for (workload, engine), fields in before.items() if (workload, engine) in now
               for name, value in fields.items() if name in now[(workload, engine)]]
    missing = [f"{w} [{e}]" for (w, e) in before if (w, e) not in now]
    if not changes:
        raise EmbedrtError(
            "the results and the baseline share no workload and engine to compare; "
            "run the same suite as the baseline (e.g. both full, or both --quick) or refresh the baseline."
        )
    return Comparison(threshold, changes, missing)
