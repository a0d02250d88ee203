"""What each `embedrt embed` path shares: the model read before loading, the resumable job, the closing report.

Below embed.py and its per-kind paths (embed_images, embed_features), which all import it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedrt.errors import InputError


def model_identity(model: str, modality: str):
    """The export dir and its manifest, read without loading the model: enough to check everything else first."""
    from embedrt.default_model import resolve_model
    from embedrt.manifest import read_manifest

    path = resolve_model(model)
    manifest = read_manifest(path)
    if manifest.modality != modality:
        need = "--images needs an image export" if modality == "image" else "give its images with --images PATH"
        raise InputError(f"MODEL {model}: a {manifest.modality} export; {need}.")
    return path, manifest


def open_job(args: argparse.Namespace, source, model_path: Path, manifest, options: dict):
    """The resumable job writing --output (None for stdout); its output checks come before the model is loaded."""
    from embedrt.bulk.job import BulkJob

    if args.output is None:
        if args.keep_text or args.overwrite:
            raise InputError("--keep-text and --overwrite need --output FILE (stdout JSONL always carries the text or path).")
        return None
    output = Path(args.output)
    if output.suffix.lower() == ".npy" and (args.keep_text or args.id_column):
        raise InputError(f"--output {output}: a .npy file holds vectors only; use .parquet or .jsonl for --keep-text or --id-column.")
    model = {"path": str(Path(model_path).resolve()), "sha256": manifest.model_file.get("sha256"), "precision": manifest.precision, "dim": manifest.dim}
    return BulkJob(output, source, model=model, options=options, dim=manifest.dim, chunk_rows=args.chunk_rows,
                   keep_text=args.keep_text, on_error=args.on_error, overwrite=args.overwrite)


def load_for(job, model_path: Path, **options):
    """embedrt.load for a job's command: a load that fails leaves --output and its work dir as this run found them."""
    import embedrt

    try:
        return embedrt.load(model_path, **options)
    except BaseException:
        if job is not None:
            job.abandon()
        raise


def finish(job, source, embed_values, args: argparse.Namespace, unit: str, dim: int) -> int:
    from embedrt.bulk.job import stream_jsonl

    if job is None:
        summary = stream_jsonl(source, embed_values, chunk_rows=args.chunk_rows, on_error=args.on_error, quiet=args.quiet, unit=unit)
        if summary.truncated:
            print(f"embedrt: {summary.truncated} {unit}(s) longer than the model were truncated.", file=sys.stderr)
        return 0
    summary = job.run(embed_values, unit=unit, quiet=args.quiet)
    notes = []
    if summary.resumed_at:
        notes.append(f"resumed after {summary.resumed_at} finished chunk(s)")
    if summary.skipped:
        notes.append(f"{summary.skipped} row(s) skipped, listed in {job.skipped_file}")
    if summary.truncated:
        notes.append(f"{summary.truncated} text(s) longer than the model truncated")
    if not args.quiet or summary.skipped or summary.truncated:  # --quiet still reports rows lost or cut
        print(f"embedrt: wrote {summary.written} x {dim} vectors to {job.output}" + (f" ({'; '.join(notes)})" if notes else ""), file=sys.stderr)
    return 0
