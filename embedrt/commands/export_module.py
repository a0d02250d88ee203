"""`embedrt export module FACTORY --weights FILE --inputs inputs.json --out DIR`: any PyTorch encoder of named features."""

from __future__ import annotations

import argparse


def add_module_parser(kinds: argparse._SubParsersAction) -> None:
    module = kinds.add_parser("module", help="any torch.nn.Module over named features (user and item towers): ids, id lists, floats")
    module.add_argument("factory", metavar="FACTORY", help="package.module:function returning the nn.Module (on PYTHONPATH)")
    module.add_argument("--out", required=True, metavar="DIR")
    module.add_argument("--weights", metavar="FILE", help="state dict to load into the module (default: as the factory made it)")
    module.add_argument("--inputs", metavar="JSON",
                        help="input specs {inputs: [{name, kind: id|id_list|float, dtype, shape, num_embeddings, layout}], example: {...}, "
                             "output: KEY}; default: the module's embedrt_inputs")
    module.add_argument("--output", metavar="KEY", help="the embedding's key when forward returns a dict")
    module.add_argument("--normalize", action="store_true", help="L2-normalise the vectors inside the graph")
    module.add_argument("--precision", choices=("fp32", "int8"), default="fp32", help="int8: dynamic int8 for the dense layers (CPU)")
    module.add_argument("--quantize-tables", action="store_true", help="int8 also for the embedding tables (the gate decides)")
    module.add_argument("--opset", type=int, default=17)
    module.add_argument("--overwrite", action="store_true", help="replace an existing features export at --out")
    module.set_defaults(func=run_module)


def run_module(args: argparse.Namespace) -> int:
    from embedrt.export import export_module  # the export extra; without it the CLI names it
    from embedrt.export.features.source import load_module, read_inputs_file
    from embedrt.gate import describe
    from embedrt.manifest import read_manifest

    src = load_module(args.factory, args.weights)
    spec = read_inputs_file(args.inputs) if args.inputs else None
    out = export_module(
        src.module,
        args.out,
        spec.example if spec else None,
        columns=spec.columns if spec else None,
        output=args.output or (spec.output if spec else None),
        normalize=args.normalize,
        precision=args.precision,
        quantize_tables=args.quantize_tables,
        source=src.record,
        opset=args.opset,
        overwrite=args.overwrite,
    )
    print(f"exported {args.factory} -> {out}")
    print(f"  {describe(read_manifest(out).parity)}")
    return 0
