"""`embedrt embed MODEL --images PATH...`: image files, directories of images or .txt lists of paths -> vectors."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from embedrt.errors import InputError
from embedrt.input_files import check_output_path, write_vectors

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
LIST_SUFFIX = ".txt"  # a file list: one image path a line, relative paths taken from the list's directory
PROGRESS_FROM = 32  # images


def image_paths(args: list[str]) -> list[Path]:
    """Expand PATH arguments in order: a directory gives its image files (recursively, sorted), a .txt its lines."""
    paths: list[Path] = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise InputError(f"--images {path}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this directory.")
            paths += found
        elif path.suffix.lower() == LIST_SUFFIX:
            paths += _read_list(path)
        else:
            paths.append(path)  # a missing or unreadable file is reported by the embedder, with its index
    return paths


def _read_list(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"--images {path}: no such file list.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--images {path}: unreadable file list ({exc}); give UTF-8 text, one image path a line.") from None
    return [path.parent / line.strip() for line in lines if line.strip()]


def run_images(args: argparse.Namespace) -> int:
    import embedrt

    output = check_output_path(args.output)
    if args.texts or args.input:
        raise InputError("give either texts (TEXT, --input) or --images, not both.")
    paths = image_paths(args.images)
    embedder = embedrt.load(args.model, device=args.device)
    if not isinstance(embedder, embedrt.ImageEmbedder):
        raise InputError(f"MODEL {args.model}: a {embedder.manifest.modality} export; --images needs an image export.")
    result = _embed_with_progress(embedder, paths, args.on_error)
    if args.on_error == "skip":
        for failure in result.failures:
            print(f"embedrt: skipped images[{failure.index}] {failure.input}: {failure.reason}", file=sys.stderr)
        vectors, kept = result.vectors, [paths[i] for i in result.indices]
    else:
        vectors, kept = result, paths
    if output is None:
        for path, vector in zip(kept, vectors):
            print(json.dumps({"path": str(path), "embedding": [round(float(x), 7) for x in vector]}, ensure_ascii=False))
    else:
        write_vectors(output, vectors, (("path", str(p)) for p in kept))
        print(f"wrote {len(kept)} x {embedder.dim} vectors to {output}", file=sys.stderr)
    return 0


def _embed_with_progress(embedder, paths: list[Path], on_error: str):
    if len(paths) < PROGRESS_FROM:
        return embedder.embed(paths, on_error=on_error)
    from tqdm import tqdm

    with tqdm(total=len(paths), unit="image", desc="embedding", file=sys.stderr) as bar:
        return embedder.embed(paths, on_error=on_error, progress=bar.update)
