"""`embedrt info MODEL`: the manifest, the providers a session really activates, and the engine's self-check here."""

from __future__ import annotations

import argparse
import json
import sys
import warnings

from embedrt.default_model import resolve_model
from embedrt.manifest import read_manifest


def add_arguments(info: argparse.ArgumentParser) -> None:
    info.add_argument("model", metavar="MODEL", help="export dir or 'default'")
    info.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    info.add_argument("--verify", default="warn", choices=("error", "warn", "off"),
                      help="the self-check on load: show a failed one and exit 2 (warn, the default), stop at it (error), or skip it (off)")
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedrt

    path = resolve_model(args.model)
    manifest = read_manifest(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a failed self-check is shown in the report below
        embedder = embedrt.load(path, device=args.device, verify=args.verify)
    report = {
        "path": str(path),
        "active_providers": embedder.providers,
        "self_check": embedder.self_check,
        "manifest": json.loads(manifest.to_json()),
    }
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if embedder.self_check is not None and not embedder.self_check["passed"]:
        print(f"embedrt: error: {path}: the engine missed its parity gate on this machine (self_check above).", file=sys.stderr)
        return 2
    return 0
