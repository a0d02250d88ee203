"""`embedrt embed MODEL --input FILE --output DIR --ray [--address ADDR]`: the same job on Ray Data, a Parquet directory out."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from embedrt.errors import InputError

READERS = {".parquet": "read_parquet", ".csv": "read_csv", ".tsv": "read_csv", ".jsonl": "read_json", ".txt": "read_text"}


def run_ray(args: argparse.Namespace) -> int:
    if args.images or args.texts or not args.input or not args.output:
        raise InputError("--ray embeds an --input file (or a directory or URL of them) into an --output directory; give both.")
    output = Path(args.output)
    if output.exists() and not args.overwrite:
        raise InputError(f"--output {output} exists; Ray writes a new directory of Parquet files: pass --overwrite to replace it.")
    if output.exists() and (not output.is_dir() or any(p.suffix != ".parquet" for p in output.iterdir())):
        raise InputError(f"--output {output}: not a directory of Parquet files from an earlier run; choose another --output.")
    suffix = Path(args.input.rstrip("/")).suffix.lower() or ".parquet"  # a directory or prefix: Parquet files
    if suffix not in READERS:
        raise InputError(f"--input {args.input}: use {', '.join(READERS)} files with --ray.")
    text_column = args.text_column or "text"
    columns = [c for c in (args.id_column, text_column) if c]

    import embedrt.ray

    ray = embedrt.ray.ray_module()
    ray.init(address=args.address, include_dashboard=False, log_to_driver=not args.quiet, configure_logging=False)
    try:
        data = ray.data
        if suffix == ".parquet":
            ds = data.read_parquet(args.input, columns=columns)
        elif suffix in (".csv", ".tsv"):
            import pyarrow.csv as pacsv

            ds = data.read_csv(args.input, parse_options=pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",", newlines_in_values=True))
        elif suffix == ".jsonl":
            ds = data.read_json(args.input, lines=True)
        else:
            if args.id_column or args.text_column:
                raise InputError(f"--input {args.input}: a text file has no columns; --text-column and --id-column need a table.")
            ds = data.read_text(args.input)
        model = embedrt.ray.put_export(args.model) if args.address else args.model  # a cluster's nodes may not share this path
        ds = embedrt.ray.embed_dataset(ds, model, text_column=text_column, concurrency=args.concurrency, device=args.device,
                                       truncate=args.truncate, **({"max_batch_tokens": args.max_batch_tokens} if args.max_batch_tokens else {}))
        keep = [c for c in (args.id_column, text_column if args.keep_text else None) if c] + ["embedding", embedrt.ray.TRUNCATED_COLUMN]
        ds = ds.select_columns(keep)
        if output.exists():
            shutil.rmtree(output)
        ds.write_parquet(str(output))
        written = ray.data.read_parquet(str(output), columns=[embedrt.ray.TRUNCATED_COLUMN])
        rows, truncated = written.count(), embedrt.ray.truncated_total(written)
    finally:
        ray.shutdown()
    from embedrt.manifest import read_manifest

    note = f" ({truncated} text(s) longer than the model truncated)" if truncated else ""
    if not args.quiet or truncated:
        print(f"embedrt: wrote {rows} x {read_manifest(Path(args.model)).dim} vectors to {output}{note}", file=sys.stderr)
    return 0
