"""`embedrt info MODEL`: the manifest, the providers a session really activates, the engine's self-check here, and its memory."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from embedrt.default_model import resolve_model
from embedrt.errors import EmbedrtError
from embedrt.manifest import read_manifest


def add_arguments(info: argparse.ArgumentParser) -> None:
    info.add_argument("model", metavar="MODEL", help="export dir or 'default'")
    info.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    info.add_argument("--verify", default="warn", choices=("error", "warn", "off"),
                      help="the self-check on load: show a failed one and exit 2 (warn, the default), stop at it (error), or skip it (off)")
    info.add_argument("--lanes", type=int, default=None,
                      help="text models on a CPU: as `embedrt serve --lanes` (default: one per core; 1: no second copy of the model)")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedrt

    path = resolve_model(args.model)
    manifest = read_manifest(path)
    if args.lanes is not None and manifest.modality != "text":
        raise EmbedrtError(f"--lanes applies to text models; {path} is a {manifest.modality} export.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a failed self-check is shown in the report below
        embedder = embedrt.load(path, device=args.device, verify=args.verify, **({"lanes": args.lanes} if args.lanes is not None else {}))
    report = {
        "path": str(path),
        "active_providers": embedder.providers,
        "self_check": embedder.self_check,
        "memory": memory_report(embedder, manifest.model_file.get("bytes")),
        "manifest": json.loads(manifest.to_json()),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if embedder.self_check is not None and not embedder.self_check["passed"]:
        print(f"embedrt: error: {path}: the engine missed its parity gate on this machine (self_check above).", file=sys.stderr)
        return 2
    return 0


def memory_report(embedder, model_bytes: int | None) -> dict:
    """What this process holds after the load, and the share of it the lanes' one-thread engine (a second copy) added."""
    from embedrt.processes import resident_bytes

    lanes = getattr(embedder, "lanes", None)
    count = lanes.count if lanes is not None else 1
    extra = lanes.engine_bytes if lanes is not None else 0
    resident = resident_bytes()
    report = {
        "resident_mb": None if resident is None else round(resident / 1e6, 1),
        "model_file_mb": None if model_bytes is None else round(model_bytes / 1e6, 1),
        "lanes": count,
        "lanes_engine_mb": None if extra is None else round(extra / 1e6, 1),
    }
    if count > 1:
        report["note"] = (f"{count} lanes run batches at once on a second, one-thread copy of the model; --lanes 1 "
                          "(embedrt.load(..., lanes=1)) saves that memory, and runs one batch at a time on every core.")
    return report
