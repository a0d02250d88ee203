"""`embedrt info MODEL`: the manifest and the providers a session really activates."""

from __future__ import annotations

import argparse
import json

from embedrt.default_model import resolve_model
from embedrt.manifest import read_manifest


def add_parser(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="print an export's manifest and its active execution providers")
    info.add_argument("model", metavar="MODEL", help="export dir or 'default'")
    info.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    info.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedrt

    path = resolve_model(args.model)
    manifest = read_manifest(path)
    embedder = embedrt.load(path, device=args.device)
    print(json.dumps({"path": str(path), "active_providers": embedder.providers, "manifest": json.loads(manifest.to_json())}, indent=2))
    return 0
