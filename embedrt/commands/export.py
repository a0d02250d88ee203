"""`embedrt export text SOURCE --out DIR`."""

from __future__ import annotations

import argparse

from embedrt.errors import EmbedrtError


def add_parser(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="export a PyTorch encoder to an ONNX export dir")
    kinds = export.add_subparsers(dest="modality", required=True, metavar="MODALITY")
    text = kinds.add_parser("text", help="a BERT-family text encoder (HF or sentence-transformers dir, or 'default')")
    text.add_argument("source", metavar="SOURCE", help="local model dir, or 'default' for all-MiniLM-L6-v2")
    text.add_argument("--out", required=True, metavar="DIR")
    text.add_argument("--pooling", choices=("mean", "cls", "max"), help="override the sentence-transformers pooling")
    norm = text.add_mutually_exclusive_group()
    norm.add_argument("--normalize", dest="normalize", action="store_true", default=None, help="L2-normalise sentence vectors")
    norm.add_argument("--no-normalize", dest="normalize", action="store_false")
    text.add_argument("--max-length", type=int, help="tokens per text (default: the model's own)")
    text.add_argument("--no-pool-in-graph", dest="pool_in_graph", action="store_false", help="export token_embeddings only; the runtime pools")
    text.add_argument("--opset", type=int, default=17)
    text.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --out")
    text.set_defaults(func=run_text)


def _export_module():
    try:
        import embedrt.export as export
    except ImportError as exc:
        raise EmbedrtError(f"exporting needs the export extra ({exc.name} is missing): pip install 'embedrt[export]'.") from exc
    return export


def run_text(args: argparse.Namespace) -> int:
    out = _export_module().export_text(
        args.source,
        args.out,
        pooling=args.pooling,
        normalize=args.normalize,
        max_length=args.max_length,
        pool_in_graph=args.pool_in_graph,
        opset=args.opset,
        overwrite=args.overwrite,
    )
    print(f"exported {args.source} -> {out}")
    return 0
