"""A 2-D scatter coloured by label: a matplotlib PNG, or a self-contained HTML page (inline SVG, hover text per point).

The HTML needs no JavaScript and no plotting library: each point is an SVG circle whose <title>
the browser shows on hover. Files are written atomically: a failed run leaves nothing behind.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from embedrt.atomic_file import atomic_write
from embedrt.errors import InputError

OUTPUT_SUFFIXES = (".png", ".html")
UNLABELLED = "(no label)"


def check_plot_path(path: str | os.PathLike) -> Path:
    """Fail before any work when the picture cannot be written as asked."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise InputError(f"--out {path}: use a .png or .html file name.")
    if not path.parent.exists():
        raise InputError(f"--out {path}: the directory {path.parent} does not exist.")
    return path


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    """One colour per distinct label in first-seen order: tab10, or tab20 beyond ten labels."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    distinct = list(dict.fromkeys(labels))
    cmap = colormaps["tab10" if len(distinct) <= 10 else "tab20"]
    return {label: to_hex(cmap(i % cmap.N)) for i, label in enumerate(distinct)}


def write_png(path: Path, coords: np.ndarray, labels: Sequence[str], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    colours = label_colours(labels)
    labels_array = np.asarray(labels, dtype=object)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    try:
        for label, colour in colours.items():
            at = labels_array == label
            ax.scatter(coords[at, 0], coords[at, 1], s=28, c=colour, label=label, alpha=0.85, edgecolors="white", linewidths=0.5)
        if len(colours) > 1 or UNLABELLED not in colours:
            ax.legend(loc="best", fontsize=8, frameon=False, markerscale=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.tight_layout()
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)


def write_html(path: Path, coords: np.ndarray, labels: Sequence[str], hover: Sequence[str], title: str) -> Path:
    width, height, margin = 720, 540, 30
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    xy = (coords - lo) / span
    px = margin + xy[:, 0] * (width - 2 * margin)
    py = height - margin - xy[:, 1] * (height - 2 * margin)
    colours = label_colours(labels)
    circles = "\n".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colours[label]}"><title>{html.escape(label)}: {html.escape(text)}</title></circle>'
        for x, y, label, text in zip(px, py, labels, hover)
    )
    legend = "".join(f'<span style="color:{c}">&#9679;</span> {html.escape(label)} &nbsp; ' for label, c in colours.items())
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif}} circle{{opacity:.85;stroke:#fff;stroke-width:.5}} circle:hover{{stroke:#000;stroke-width:2}}</style>
</head><body><h3>{html.escape(title)}</h3><p>{legend}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" style="border:1px solid #ddd">
{circles}
</svg><p>Hover over a point to see its text.</p></body></html>
"""
    return atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
