"""`embedrt triton build DIR... --repository OUT` and `embedrt triton serve OUT`."""

from __future__ import annotations

import argparse
import signal
import sys

from embedrt.errors import EmbedrtError
from embedrt.triton.configs import BACKENDS


def add_arguments(triton: argparse.ArgumentParser) -> None:
    tsub = triton.add_subparsers(dest="triton_command", required=True, metavar="SUBCOMMAND")

    build = tsub.add_parser("build", help="write a Triton model repository from export dirs")
    build.add_argument("export_dirs", nargs="+", metavar="DIR", help="export dirs (text or image)")
    build.add_argument("--repository", required=True, metavar="OUT", help="the model repository dir to write")
    build.add_argument("--backend", default="python", choices=BACKENDS,
                       help="encoder backend: python (runs from PyPI alone), onnxruntime or tensorrt (NVIDIA's container)")
    build.add_argument("--name", help="the model name clients call with raw inputs (default: the export dir's name)")
    build.add_argument("--instances", type=int, default=1, help="instances of each model (instance_group count)")
    build.add_argument("--gpu", action=argparse.BooleanOptionalAction, default=None,
                       help="KIND_GPU instances (default: GPU for onnxruntime/tensorrt, CPU for python)")
    build.add_argument("--max-batch-size", type=int, default=None, help="default: the manifest's")
    build.add_argument("--max-queue-delay-us", type=int, default=2000, help="dynamic batcher's wait for more requests")
    build.add_argument("--pad-multiple", type=int, default=16, help="token ids are padded to a multiple of this")
    build.add_argument("--tensorrt-accelerator", action="store_true", help="onnxruntime backend: use its TensorRT accelerator")
    build.add_argument("--fp32", dest="fp16", action="store_false", help="TensorRT accelerator in FP32 (default FP16)")
    build.add_argument("--overwrite", action="store_true", help="replace a repository written earlier by `embedrt triton build` (never other files)")
    build.set_defaults(func=run_build)

    serve = tsub.add_parser("serve", help="run a local tritonserver (nvidia-pytriton wheel) on a repository until Ctrl-C")
    serve.add_argument("repository", metavar="OUT")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address the HTTP, gRPC and metrics endpoints bind to (default: this machine only; 0.0.0.0 for all interfaces)")
    serve.add_argument("--http-port", type=int, default=8000)
    serve.add_argument("--grpc-port", type=int, default=8001)
    serve.add_argument("--metrics-port", type=int, default=8002)
    serve.add_argument("--exit-timeout-secs", type=int, default=30, metavar="S",
                       help="on SIGTERM or Ctrl-C, wait this long for in-flight requests (and open HTTP connections) before stopping")
    serve.add_argument("--quiet", action="store_true", help="do not echo the server's log")
    serve.set_defaults(func=run_serve)


def run_build(args: argparse.Namespace) -> int:
    from embedrt.triton.configs import ServingOptions
    from embedrt.triton.repository import build_repository

    options = ServingOptions(
        backend=args.backend,
        instance_count=args.instances,
        gpu=args.gpu,
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        tensorrt_accelerator=args.tensorrt_accelerator,
        fp16=args.fp16,
        pad_multiple=args.pad_multiple,
    )
    out = build_repository(args.export_dirs, args.repository, options, name=args.name, overwrite=args.overwrite)
    models = sorted(p.name for p in out.iterdir() if (p / "config.pbtxt").is_file())
    print(f"wrote {out}: {', '.join(models)}")
    return 0


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run_serve(args: argparse.Namespace) -> int:
    from embedrt.triton.server import TritonServer

    if args.exit_timeout_secs < 0:
        raise EmbedrtError(f"--exit-timeout-secs {args.exit_timeout_secs}: give 0 or more seconds.")
    server = TritonServer(
        args.repository,
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        metrics_port=args.metrics_port,
        exit_timeout_s=args.exit_timeout_secs,
        echo=None if args.quiet else sys.stderr,
    )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        server.start()
        print(f"tritonserver ready (pid {server.pid}): http {server.http_url}  grpc {server.grpc_url}  metrics {server.metrics_url}", flush=True)
        code = server.wait()
        if code is not None and code < 0:  # -9 as an exit status would read 247
            print(f"embedrt: error: tritonserver was killed by signal {-code} ({_signal_name(-code)}), not stopped by embedrt "
                  f"(out of memory, or another process killed it); run the command again to restart it. Its last lines:\n"
                  f"{server.error_lines()}", file=sys.stderr)
            return 1
        print(f"embedrt: error: tritonserver exited with code {code}:\n{server.error_lines()}", file=sys.stderr)
        return code or 1
    except KeyboardInterrupt:
        print(f"stopping tritonserver: in-flight requests get up to {args.exit_timeout_secs} s", file=sys.stderr, flush=True)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the drain short
        code = server.stop()
        if code is not None and code < 0:  # killed by a signal: it crashed, or outlived the timeout and was killed
            print(f"embedrt: error: tritonserver did not stop by itself (signal {-code}):\n{server.error_lines()}", file=sys.stderr)
            return 1
        note = "" if code == 0 else f" (exit code {code}: {server.error_lines(tail=1)})"
        print(f"tritonserver stopped{note}", file=sys.stderr, flush=True)
        return 0
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
