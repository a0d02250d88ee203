"""`embedrt export text SOURCE --out DIR` and `embedrt export image SOURCE --out DIR`."""

from __future__ import annotations

import argparse

from embedrt.commands.export_module import add_module_parser
from embedrt.gate import describe
from embedrt.manifest import read_manifest


def add_arguments(export: argparse.ArgumentParser) -> None:
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
    add_precision_arguments(text)
    text.add_argument("--overwrite", action="store_true", help="replace an earlier embedrt export of the same kind at --out (never other files, nor a source dir)")
    text.set_defaults(func=run_text)
    add_image_parser(kinds)
    add_module_parser(kinds)


def add_image_parser(kinds: argparse._SubParsersAction) -> None:
    image = kinds.add_parser("image", help="a ResNet image encoder (torchvision architecture + weights, or HF ResNetModel dir)")
    image.add_argument("source", metavar="SOURCE", help="resnet18|resnet34|resnet50|resnet101|resnet152, or a local HF ResNetModel dir")
    image.add_argument("--out", required=True, metavar="DIR")
    image.add_argument("--weights", metavar="FILE", help="state dict or checkpoint (.pth/.pt/.safetensors) for an architecture name")
    image.add_argument("--random-init", action="store_true", help="untrained weights (tests and benchmarks); the manifest says so")
    image.add_argument("--seed", type=int, default=0, help="seed of --random-init")
    image.add_argument("--normalize", action="store_true", help="L2-normalise the vectors inside the graph")
    image.add_argument("--opset", type=int, default=17)
    add_precision_arguments(image)
    image.add_argument("--overwrite", action="store_true", help="replace an earlier embedrt export of the same kind at --out (never other files, nor a source dir)")
    image.set_defaults(func=run_image)


def add_precision_arguments(parser: argparse.ArgumentParser) -> None:
    """--precision, --optimize, --provider: shared by `export` and `optimize`."""
    parser.add_argument("--precision", choices=("fp32", "int8", "fp16", "bf16"), default="fp32",
                        help="fp32 (exact), int8 (CPU, calibrated on bundled text/photos), fp16 (GPU: needs --provider cuda|tensorrt), "
                             "bf16 (text on a CPU with bf16 units, run by OpenVINO: pip install embedrt[openvino])")
    parser.add_argument("--optimize", choices=("none", "fuse"), default=None,
                        help="graph fusion (attention, skip-layernorm, gelu / conv+activation); default: fuse for int8 text, none otherwise")
    parser.add_argument("--provider", choices=("cpu", "cuda", "tensorrt", "openvino"), default=None,
                        help="execution provider the engine is built for (recorded; the runtime refuses others)")
    parser.add_argument("--int8-weights", choices=("auto", "8", "7"), default="auto",
                        help="int8 weight width: auto asks this CPU's int8 kernel; 7 for engines that will also run on x86 CPUs without VNNI")


def engine_options(args: argparse.Namespace) -> dict:
    """The keyword arguments add_precision_arguments() parsed, as the export functions take them."""
    return {"precision": args.precision, "optimize": args.optimize, "provider": args.provider, "int8_weights": args.int8_weights}


def run_text(args: argparse.Namespace) -> int:
    from embedrt.export import export_text  # the export extra; without it the CLI names it

    out = export_text(
        args.source,
        args.out,
        pooling=args.pooling,
        normalize=args.normalize,
        max_length=args.max_length,
        pool_in_graph=args.pool_in_graph,
        opset=args.opset,
        **engine_options(args),
        overwrite=args.overwrite,
    )
    print(f"exported {args.source} -> {out}")
    print(f"  {describe(read_manifest(out).parity)}")
    return 0


def run_image(args: argparse.Namespace) -> int:
    from embedrt.export import export_image

    out = export_image(
        args.source,
        args.out,
        weights=args.weights,
        random_init=args.random_init,
        seed=args.seed,
        normalize=args.normalize,
        opset=args.opset,
        **engine_options(args),
        overwrite=args.overwrite,
    )
    print(f"exported {args.source} -> {out}")
    print(f"  {describe(read_manifest(out).parity)}")
    return 0
