"""`embedrt ...`: thin commands over the Python API. Each command lives in embedrt/commands/<name>.py."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from embedrt.errors import EmbedrtError

# Each module has add_parser(subparsers) and sets `func` on its parser; main() calls func(args) -> exit code.
COMMANDS = ("export", "embed", "info", "triton", "bench", "evaluate", "visualize", "optimize", "serve")

EXIT_ERROR = 2  # bad input, a bad export dir, a failed gate: the message says which and what to do


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedrt", description="Export encoders to ONNX and embed text and images fast.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"embedrt.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return int(args.func(args) or 0)
    except EmbedrtError as exc:
        print(f"embedrt: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `embedrt info DIR | head`: the reader left; no traceback, and no flush error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
