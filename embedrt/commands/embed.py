"""`embedrt embed MODEL [TEXT ...] [--input FILE] [--output FILE]`: streamed in chunks, resumable, or on Ray with --ray."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedrt.errors import InputError


def add_arguments(embed: argparse.ArgumentParser) -> None:
    from embedrt.bulk.job import DEFAULT_CHUNK_ROWS

    embed.add_argument("model", metavar="MODEL", help="export dir, or 'default' (exported once into the cache dir)")
    embed.add_argument("texts", nargs="*", metavar="TEXT")
    embed.add_argument("--images", nargs="+", metavar="PATH", help="image files, directories of images, or .txt lists of image paths (an image export)")
    embed.add_argument("--input", metavar="FILE", help=".txt (one text a line), .jsonl (.ndjson, .json: one object a line), .csv, .tsv or .parquet, read in chunks")
    embed.add_argument("--text-column", metavar="NAME", help="the text column of a .jsonl/.csv/.tsv/.parquet input (default: text)")
    embed.add_argument("--id-column", metavar="NAME", help="a column carried to the output beside each vector (default: the row number)")
    embed.add_argument("--output", metavar="FILE", help=".parquet, .jsonl or .npy, written in chunks and resumable; default: JSONL on stdout")
    embed.add_argument("--keep-text", action="store_true", help="write each text beside its vector (.parquet and .jsonl outputs)")
    embed.add_argument("--on-error", choices=("raise", "skip"), default="raise", help="a bad row or image: stop naming it, or record it in OUTPUT.skipped.jsonl and go on")
    embed.add_argument("--overwrite", action="store_true", help="replace a finished output, or restart an unfinished one from scratch")
    embed.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help=f"rows per chunk: the unit of memory and of resuming (default {DEFAULT_CHUNK_ROWS})")
    embed.add_argument("--quiet", action="store_true", help="no progress and no summary; only rows skipped or truncated are still reported")
    embed.add_argument("--ray", action="store_true", help="run on Ray Data; --output is then a directory of Parquet files")
    embed.add_argument("--address", metavar="ADDR", help="with --ray: the cluster to join ('auto', ray://host:10001); default: a local Ray")
    embed.add_argument("--concurrency", type=int, default=None, help="with --ray: embedding actors (default: one 1-thread actor per CPU of each node)")
    embed.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    embed.add_argument("--max-batch-tokens", type=int, default=None)
    embed.add_argument("--no-truncate", dest="truncate", action="store_false", help="fail on texts longer than the model's max length")
    embed.add_argument("--long-text", default="truncate", choices=("truncate", "chunk"), help="texts longer than the model: cut them (truncate) or embed overlapping token windows and average them (chunk)")
    embed.add_argument("--window", type=int, default=None, help="with --long-text chunk: tokens per window (default: the model's max length)")
    embed.add_argument("--stride", type=int, default=None, help="with --long-text chunk: tokens between window starts (default: 3/4 of a window)")
    embed.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.ray:
        from embedrt.commands.embed_ray import run_ray

        return run_ray(args)
    from embedrt.commands.embed_features import is_feature_model, run_features

    if is_feature_model(args.model):
        return run_features(args)
    if args.images:
        from embedrt.commands.embed_images import run_images

        return run_images(args)
    from embedrt.bulk.embedding import text_embedding
    from embedrt.bulk.job import check_output
    from embedrt.bulk.sources import TextArguments, open_text_file
    from embedrt.commands.embed_job import finish, load_for, model_identity, open_job

    if args.output is not None:
        check_output(Path(args.output))  # first: a wrong --output costs nothing, not a model load and a run
    if args.texts and args.input:
        raise InputError("give either TEXT arguments or --input FILE, not both.")
    if args.input:
        source = open_text_file(args.input, text_column=args.text_column, id_column=args.id_column)
    elif args.texts:
        if args.text_column or args.id_column:
            raise InputError("--text-column and --id-column apply to an --input file, not to TEXT arguments.")
        source = TextArguments(args.texts)
    else:
        raise InputError("nothing to embed: give TEXT arguments or --input FILE.")
    if args.long_text != "chunk" and (args.window or args.stride):
        raise InputError("--window and --stride apply to --long-text chunk only.")
    options = {"--device": args.device, "--max-batch-tokens": args.max_batch_tokens, "--no-truncate": not args.truncate,
               "--long-text": args.long_text, "--window": args.window, "--stride": args.stride, "--text-column": args.text_column,
               "--id-column": args.id_column}
    model_path, manifest = model_identity(args.model, "text")
    job = open_job(args, source, model_path, manifest, options)
    if job is not None and job.open():
        print(f"embedrt: {job.output} is complete (same model, input and options): nothing to do; pass --overwrite to embed again.", file=sys.stderr)
        return 0

    load_options = {"truncate": args.truncate}
    if args.max_batch_tokens:
        load_options["max_batch_tokens"] = args.max_batch_tokens
    embedder = load_for(job, model_path, device=args.device, **load_options)
    windowing = {"long_text": "chunk", "window": args.window, "stride": args.stride} if args.long_text == "chunk" else {}
    return finish(job, source, text_embedding(embedder, **windowing), args, "text", embedder.dim)
