"""`embedrt optimize DIR --out DIR2 --precision int8|fp16|bf16|fp32 [--optimize fuse] [--provider ...]`."""

from __future__ import annotations

import argparse

from embedrt.commands.export import add_precision_arguments, engine_options
from embedrt.gate import describe
from embedrt.manifest import read_manifest


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("export_dir", metavar="DIR", help="an fp32 export dir (from `embedrt export`)")
    p.add_argument("--out", required=True, metavar="DIR2")
    add_precision_arguments(p)
    p.add_argument("--overwrite", action="store_true", help="replace an earlier embedrt export of the same kind at --out (never other files, nor a source dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedrt.export import optimize_export  # the export extra, imported before any work; without it the CLI names it

    out = optimize_export(args.export_dir, args.out, overwrite=args.overwrite, **engine_options(args))
    print(f"optimized {args.export_dir} -> {out} ({args.precision})")
    print(f"  {describe(read_manifest(out).parity)}")
    return 0
