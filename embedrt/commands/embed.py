"""`embedrt embed MODEL [TEXT ...] [--input FILE] [--output FILE]`."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from embedrt.errors import InputError
from embedrt.input_files import check_output_path, read_texts, write_vectors

PROGRESS_FROM = 256  # inputs; fewer finish before a bar would be worth drawing


def add_parser(sub: argparse._SubParsersAction) -> None:
    embed = sub.add_parser("embed", help="embed texts with an export dir (or 'default')")
    embed.add_argument("model", metavar="MODEL", help="export dir, or 'default' (exported once into the cache dir)")
    embed.add_argument("texts", nargs="*", metavar="TEXT")
    embed.add_argument("--images", nargs="+", metavar="PATH", help="image files, directories of images, or .txt lists of image paths (an image export)")
    embed.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="images: stop at a bad image, or skip it and report it")
    embed.add_argument("--input", metavar="FILE", help="a text file (one text a line) or JSONL ({\"text\": ...} a line)")
    embed.add_argument("--output", metavar="FILE", help=".npy or .jsonl; default: JSONL on stdout")
    embed.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    embed.add_argument("--max-batch-tokens", type=int, default=None)
    embed.add_argument("--no-truncate", dest="truncate", action="store_false", help="fail on texts longer than the model's max length")
    embed.add_argument("--long-text", default="truncate", choices=("truncate", "chunk"), help="texts longer than the model: cut them (truncate) or embed overlapping token windows and average them (chunk)")
    embed.add_argument("--window", type=int, default=None, help="with --long-text chunk: tokens per window (default: the model's max length)")
    embed.add_argument("--stride", type=int, default=None, help="with --long-text chunk: tokens between window starts (default: 3/4 of a window)")
    embed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedrt

    if args.images:
        from embedrt.commands.embed_images import run_images

        return run_images(args)
    output = check_output_path(args.output)
    texts = list(args.texts)
    if args.input:
        texts += read_texts(args.input)
    if not texts:
        raise InputError("nothing to embed: give TEXT arguments or --input FILE.")
    options = {"truncate": args.truncate}
    if args.max_batch_tokens:
        options["max_batch_tokens"] = args.max_batch_tokens
    if args.long_text != "chunk" and (args.window or args.stride):
        raise InputError("--window and --stride apply to --long-text chunk only.")
    windowing = {"long_text": "chunk", "window": args.window, "stride": args.stride} if args.long_text == "chunk" else {}
    embedder = embedrt.load(args.model, device=args.device, **options)
    vectors = _embed_with_progress(embedder, texts, windowing)
    if output is None:
        for text, vector in zip(texts, vectors):
            print(json.dumps({"text": text, "embedding": [round(float(x), 7) for x in vector]}, ensure_ascii=False))
    else:
        write_vectors(output, vectors, (("text", t) for t in texts))
        print(f"wrote {len(texts)} x {vectors.shape[1]} vectors to {output}", file=sys.stderr)
    return 0


def _embed_with_progress(embedder, texts: list[str], windowing: dict) -> np.ndarray:
    if len(texts) < PROGRESS_FROM:
        return embedder.embed(texts, **windowing)
    from tqdm import tqdm

    with tqdm(total=len(texts), unit="text", desc="embedding", file=sys.stderr) as bar:
        return embedder.embed(texts, progress=bar.update, **windowing)
