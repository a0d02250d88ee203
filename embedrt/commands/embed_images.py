"""`embedrt embed MODEL --images PATH...`: image files, directories of images or .txt lists of paths -> vectors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedrt.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
LIST_SUFFIX = ".txt"  # a file list: one image path a line, relative paths taken from the list's directory


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
    from embedrt.bulk.embedding import image_embedding
    from embedrt.bulk.job import check_output
    from embedrt.bulk.sources import ImagePaths
    from embedrt.commands.embed_job import finish, load_for, model_identity, open_job

    if args.output is not None:
        check_output(Path(args.output))
    if args.texts or args.input:
        raise InputError("give either texts (TEXT, --input) or --images, not both.")
    if args.keep_text or args.text_column or args.id_column:
        raise InputError("--keep-text, --text-column and --id-column apply to texts; an image's path is always kept beside its vector.")
    source = ImagePaths(image_paths(args.images))
    model_path, manifest = model_identity(args.model, "image")
    job = open_job(args, source, model_path, manifest, {"--device": args.device})
    if job is not None and job.open():
        print(f"embedrt: {job.output} is complete (same model, images and options): nothing to do; pass --overwrite to embed again.", file=sys.stderr)
        return 0

    embedder = load_for(job, model_path, device=args.device)
    return finish(job, source, image_embedding(embedder), args, "image", embedder.dim)
