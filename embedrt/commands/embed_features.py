"""`embedrt embed FEATURES_MODEL --input rows.jsonl|.parquet [--output FILE]`: a feature model's rows -> vectors, in chunks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from embedrt.errors import InputError


def run_features(args: argparse.Namespace) -> int:
    from embedrt.bulk.features import FeatureRecords, feature_embedding
    from embedrt.bulk.job import check_output
    from embedrt.commands.embed_job import finish, load_for, model_identity, open_job

    if args.output is not None:
        check_output(Path(args.output))
    if args.texts or args.images or not args.input:
        raise InputError(f"MODEL {args.model}: a feature model embeds rows: give them with --input FILE (.jsonl or .parquet).")
    if args.keep_text or args.text_column:
        raise InputError("--keep-text and --text-column apply to texts; a feature model's rows are keyed by --id-column (or the row number).")
    model_path, manifest = model_identity(args.model, "features")
    source = FeatureRecords(Path(args.input), [c.name for c in manifest.features.columns], args.id_column)
    job = open_job(args, source, model_path, manifest, {"--device": args.device, "--id-column": args.id_column})
    if job is not None and job.open():
        print(f"embedrt: {job.output} is complete (same model, input and options): nothing to do; pass --overwrite to embed again.", file=sys.stderr)
        return 0

    embedder = load_for(job, model_path, device=args.device)
    return finish(job, source, feature_embedding(embedder), args, "row", embedder.dim)


def is_feature_model(model: str) -> bool:
    """Whether MODEL is a features export; an unreadable MODEL is False here and reported by the path that loads it."""
    from embedrt.default_model import resolve_model
    from embedrt.errors import EmbedrtError
    from embedrt.manifest import read_manifest

    try:
        return read_manifest(resolve_model(model)).modality == "features"
    except EmbedrtError:
        return False
