"""`embedrt ...`: thin commands over the Python API. Each command lives in embedrt/commands/<name>.py.

Only the command being run is imported (or the one whose `--help` is asked): commands need different
extras, and `embedrt --help` or `embedrt embed` must work on the runtime alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from embedrt.errors import EmbedrtError
from embedrt.extras import missing_extra_message

# name -> one-line help. embedrt/commands/<name>.py has add_arguments(parser), which sets `func`; main() calls func(args) -> exit code.
COMMANDS = {
    "export": "export a PyTorch encoder to an ONNX export dir",
    "embed": "embed texts or images with an export dir (or 'default'), a file of any size at a time",
    "info": "print an export's manifest and its active execution providers",
    "triton": "Triton Inference Server: build a model repository, serve it locally",
    "bench": "measure embedrt against PyTorch; compare with a recorded baseline",
    "evaluate": "score an export on your labelled data, or its parity with PyTorch or another export",
    "visualize": "embed inputs (or take a .npy) and draw them in 2-D, coloured by label",
    "optimize": "another precision or graph optimisation of an fp32 export, with its own parity gate",
    "serve": "serve export dirs over HTTP (OpenAI /v1/embeddings, TEI /embed, /metrics)",
}

EXIT_ERROR = 2  # bad input, a bad export dir, a failed gate, a missing extra: the message says which and what to do


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of `embedrt`, with the arguments of `command` only (the others are listed, not imported)."""
    parser = argparse.ArgumentParser(prog="embedrt", description="Export encoders to ONNX and embed text and images fast.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_line in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_line, description=help_line[:1].upper() + help_line[1:] + ".")
        if name == command:
            importlib.import_module(f"embedrt.commands.{name}").add_arguments(command_parser)
    return parser


def command_in(argv: list[str]) -> str | None:
    """The COMMAND of an `embedrt [-v] COMMAND ...` line (the only options before it take no value)."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = command_in(argv)
    try:
        args = build_parser(command).parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
        return int(args.func(args) or 0)
    except EmbedrtError as exc:
        print(f"embedrt: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        message = missing_extra_message(command or "", exc)
        if message is None:  # not an extra's module: a broken install, shown as it is
            raise
        print(f"embedrt: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `embedrt info DIR | head`: the reader left; no traceback, and no flush error at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
