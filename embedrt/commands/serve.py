"""`embedrt serve MODEL [MODEL ...]`: the HTTP server (embedrt.serve) on uvicorn, models loaded and warmed up first."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from embedrt.errors import EmbedrtError
from embedrt.runtime.queue import DEFAULT_MAX_WAIT_MS
from embedrt.serve.limits import Limits

API_KEY_ENV = "EMBEDRT_API_KEY"  # read here, where --api-key is; the middleware gets the key itself
ROUTES = ("POST /v1/embeddings", "POST /embed", "POST /embed_all", "GET /health", "GET /v1/models", "GET /info", "GET /metrics", "GET /docs")


def add_arguments(serve: argparse.ArgumentParser) -> None:
    d = Limits()
    serve.add_argument("models", nargs="+", metavar="MODEL", help="export dirs, or 'default' (the bundled model)")
    serve.add_argument("--name", action="append", default=[], metavar="NAME", help="the name of each MODEL, in order (default: the export dir's name)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    serve.add_argument("--api-key", default=None, help=f"require 'Authorization: Bearer KEY' on every route but /health (or set {API_KEY_ENV})")
    serve.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes)
    serve.add_argument("--max-inputs", type=int, default=d.max_inputs, help="inputs per request")
    serve.add_argument("--max-input-chars", type=int, default=d.max_input_chars, help="characters per text")
    serve.add_argument("--max-concurrent", type=int, default=d.max_concurrent, help="unanswered requests per model; more get 429")
    serve.add_argument("--request-timeout", type=float, default=d.request_timeout,
                       help="seconds from a request's headers to its answer; a body not read by then is a 408, a later answer a 503")
    serve.add_argument("--header-timeout", type=float, default=d.header_timeout,
                       help="seconds a connection has to send a request's headers (from its start or its last answer); then 408 and closed")
    serve.add_argument("--max-wait-ms", type=float, default=DEFAULT_MAX_WAIT_MS, help="how long a lone request waits for others to batch with")
    serve.add_argument("--max-batch-tokens", type=int, default=None, help="token budget per engine batch (default: the device's)")
    serve.add_argument("--lanes", type=int, default=None,
                       help="text models on a CPU: batches run at once, one core each (default: one per core; 1 saves a second copy of the model)")
    serve.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from embedrt.serve.app import create_app
    from embedrt.serve.connections import header_deadline_protocol
    from embedrt.serve.metrics import Metrics
    from embedrt.serve.models import check_unique, load_model, model_name

    if len(args.name) > len(args.models):
        raise EmbedrtError(f"{len(args.name)} --name for {len(args.models)} MODEL(s): give at most one name per model.")
    names = args.name + [model_name(m) for m in args.models[len(args.name):]]
    check_unique(names)
    limits = Limits(args.max_body_bytes, args.max_inputs, args.max_input_chars, args.max_concurrent, args.request_timeout, args.header_timeout)
    api_key = args.api_key or os.environ.get(API_KEY_ENV) or None
    metrics = Metrics()
    queue_options = {"max_wait_ms": args.max_wait_ms, "max_queued": limits.max_concurrent}
    served = [load_model(m, n, device=args.device, queue_options=queue_options, observer=metrics.observer(n), max_batch_tokens=args.max_batch_tokens,
                         lanes=args.lanes)
              for m, n in zip(args.models, names)]
    app = create_app(served, limits, api_key=api_key, metrics=metrics)
    print(f"embedrt serve: http://{args.host}:{args.port}  ({', '.join(ROUTES)})", flush=True)
    print(f"  limits: {limits.describe()}; API key {'required' if api_key else 'off'}", flush=True)
    for m in served:
        lanes = f", {m.embedder.lanes.count} lane(s)" if m.modality == "text" else ""
        if m.modality == "text" and m.embedder.lanes.count > 1:
            extra = m.embedder.lanes.engine_bytes
            lanes += f" (their one-thread copy of the model: {'+%.0f MB' % (extra / 1e6) if extra is not None else 'more memory'}; --lanes 1 saves it)"
        print(f"  model {m.name!r}: {m.modality}, dim {m.dim}, {m.path}, providers {', '.join(m.embedder.providers)}{lanes}", flush=True)
    slow_headers = metrics.requests.labels("-", "-", "client_timeout")  # no route was read
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False,
                            timeout_graceful_shutdown=limits.request_timeout + 5,
                            http=header_deadline_protocol(limits.header_timeout, slow_headers.inc))
    # uvicorn drains on SIGTERM/SIGINT, then re-raises the signal; once drained the answer is exit 0
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    uvicorn.Server(config).run()
    print("embedrt serve: stopped", file=sys.stderr, flush=True)
    return 0
