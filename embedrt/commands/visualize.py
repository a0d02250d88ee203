"""`embedrt visualize [MODEL] --input FILE [--labels COLUMN|FILE] --method tsne|umap|pca --out plot.png|.html`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from embedrt.visualization.inputs import __doc__ as INPUTS
from embedrt.visualization.reduction import METHODS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Embed inputs, reduce to 2-D and draw a scatter coloured by label.\n\n" + INPUTS.split("\n\n", 1)[1]
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("model", nargs="?", metavar="MODEL", help="export dir, or 'default'; not needed for a .npy input")
    p.add_argument("--input", required=True, metavar="FILE", help=".csv/.tsv/.jsonl, .txt (one a line) or .npy vectors")
    p.add_argument("--labels", metavar="COLUMN|FILE", help="a column of --input (default: 'label' when there is one) or a file, one label a line")
    p.add_argument("--column", default=None, help="the column to embed (default: 'text', or 'image' for an image export)")
    p.add_argument("--method", default="tsne", choices=METHODS, help="tsne (default), umap or pca")
    p.add_argument("--out", required=True, metavar="FILE", help="plot.png, or plot.html (hover a point to read its text)")
    p.add_argument("--title", default=None)
    p.add_argument("--coords", metavar="FILE.npy", help="also save the 2-D coordinates")
    p.add_argument("--long-text", default="truncate", choices=("truncate", "chunk"), help="texts longer than the model (see embedrt embed)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedrt.errors import InputError
    from embedrt.visualization.inputs import read_points
    from embedrt.visualization.plots import UNLABELLED, check_plot_path, write_html, write_png
    from embedrt.visualization.reduction import reduce_to_2d

    out = check_plot_path(args.out)
    _check_eval_extra(args.method)
    if args.coords and not args.coords.endswith(".npy"):
        raise InputError(f"--coords {args.coords}: use a .npy file name.")
    precomputed = args.input.lower().endswith(".npy")
    if precomputed and args.model:
        raise InputError(f"MODEL {args.model}: a .npy input is already vectors; leave MODEL out.")
    if not precomputed and not args.model:
        raise InputError(f"--input {args.input}: give the MODEL that embeds it (an export dir or 'default'), or a .npy of vectors.")
    embedder = None
    if not precomputed:
        import embedrt

        embedder = embedrt.load(args.model, device=args.device)
    is_image = embedder is not None and embedder.manifest.modality == "image"
    column = args.column or ("image" if is_image else "text")
    points = read_points(args.input, labels=args.labels, column=column, relative_paths=is_image)
    vectors = points.vectors if embedder is None else _embed(embedder, points.items, args.long_text, is_image)
    coords = reduce_to_2d(vectors, args.method)
    labels = points.labels or [UNLABELLED] * len(coords)
    source = Path(args.input).name if embedder is None else embedder.path.name
    title = args.title or f"{source} · {args.method} · {len(coords)} points"
    if out.suffix.lower() == ".png":
        write_png(out, coords, labels, title)
    else:
        write_html(out, coords, labels, points.items, title)
    if args.coords:
        np.save(args.coords, coords.astype(np.float32))
    print(f"wrote {out} ({len(coords)} points, {len(set(labels))} label(s), {args.method})", file=sys.stderr)
    return 0


def _embed(embedder, items: list[str], long_text: str, is_image: bool) -> np.ndarray:
    if is_image:
        return embedder.embed(items)
    return embedder.embed(items, long_text=long_text)


def _check_eval_extra(method: str) -> None:
    """The eval extra's libraries, checked before any work (found, not imported: umap takes seconds to import)."""
    from importlib.util import find_spec

    from embedrt.errors import EmbedrtError

    needed = {"sklearn": "scikit-learn", "matplotlib": "matplotlib"} | ({"umap": "umap-learn"} if method == "umap" else {})
    missing = [package for module, package in needed.items() if find_spec(module) is None]
    if missing:
        raise EmbedrtError(f"embedrt visualize needs {', '.join(missing)}: pip install 'embedrt[eval]'.")
