"""The ASGI app: routes parse HTTP, hand inputs to each model's queue, and map errors to status codes."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import sys
import time
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import embedrt
from embedrt.errors import EmbedrtError, InputError, OutputError
from embedrt.runtime.queue import SENTENCE, TOKENS, QueueClosedError, QueueFullError
from embedrt.serve.auth import ApiKeyMiddleware
from embedrt.serve.http_errors import ApiError, api_error_response, error_response
from embedrt.serve.limits import Limits
from embedrt.serve.metrics import Metrics
from embedrt.serve.models import ServedModel, resize
from embedrt.serve.records import RecordsRequest, parse_records
from embedrt.serve.schemas import (
    EmbedCall,
    OpenAIEmbeddingRequest,
    TEIEmbedAllRequest,
    TEIEmbedRequest,
    check_chars,
    decode_image,
    parse_openai,
    parse_tei,
)

log = logging.getLogger("embedrt.serve")

RETRY_AFTER_SECONDS = "1"
OUTCOMES = {401: "unauthorized", 408: "client_timeout", 413: "too_large", 429: "queue_full", 503: "timeout"}  # the others: bad_input
INLINE_TOKENIZE_CHARS = 4096  # texts this short are tokenised on the event loop (under 1 ms), longer ones in a worker thread


def _body_doc(model: type) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


class ServeState:
    """What the routes share: the models, the limits, the metrics, and the drain accounting."""

    def __init__(self, models: list[ServedModel], limits: Limits, metrics: Metrics, api_key: str | None) -> None:
        self.models = {m.name: m for m in models}
        self.limits = limits
        self.metrics = metrics
        self.api_key = api_key
        self.accepted = 0  # embedding requests taken in
        self.answered = 0  # of those, answered (any status)
        self.stopping = False

    def model(self, name: str | None, *, text_only: bool = False) -> ServedModel:
        if name is None:
            candidates = [m for m in self.models.values() if not text_only or m.modality == "text"]
            if len(candidates) == 1 or (candidates and text_only):
                return candidates[0]
            raise ApiError(400, f"model is missing and this server serves several: {', '.join(self.models)}.", param="model")
        served = self.models.get(name)
        if served is None:
            raise ApiError(404, f"model {name!r} is not served here; known models: {', '.join(self.models)}.", param="model", code="model_not_found")
        if text_only and served.modality != "text":
            raise ApiError(400, f"model {name!r} is an {served.modality} model; this route takes text models only.", param="model")
        return served


def create_app(models: list[ServedModel], limits: Limits | None = None, *, api_key: str | None = None, metrics: Metrics | None = None) -> FastAPI:
    limits = limits or Limits()
    metrics = metrics or Metrics()
    state = ServeState(models, limits, metrics, api_key)
    for m in models:
        metrics.watch_depth(m.name, lambda q=m.queue: q.depth)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        state.stopping = True  # uvicorn has answered every request in flight by now
        for m in models:
            await run_in_threadpool(m.queue.close)
        print(f"embedrt serve: drained; answered {state.answered} of {state.accepted} accepted requests", file=sys.stderr, flush=True)

    app = FastAPI(title="embedrt serve", version=embedrt.__version__, lifespan=lifespan,
                  description="Embeddings over HTTP: OpenAI /v1/embeddings, TEI /embed and /embed_all.")
    app.state.serve = state

    if api_key:
        app.add_middleware(ApiKeyMiddleware, api_key=api_key)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError):
        return api_error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def on_fault(request: Request, exc: Exception):
        log.exception("embedrt serve: fault on %s %s", request.method, request.url.path)
        return error_response(500, "internal server error; the server log has the details.")

    async def read_body(request: Request) -> bytes:
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise ApiError(413, f"the request body is more than this server's limit of {limits.max_body_bytes} bytes (--max-body-bytes).")
            chunks.append(chunk)
        return b"".join(chunks)

    async def read_json(request: Request, start: float) -> Any:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limits.max_body_bytes:
            raise ApiError(413, f"the request body is {declared} bytes, more than this server's limit of {limits.max_body_bytes} (--max-body-bytes).")
        left = limits.request_timeout - (time.perf_counter() - start)
        try:  # the timeout covers the body too: a body that stalls must not hold its connection and its slot
            body = await asyncio.wait_for(read_body(request), max(left, 0.0))
        except asyncio.TimeoutError:
            raise ApiError(408, f"the request body did not arrive within this server's timeout of {limits.request_timeout:g} s (--request-timeout); "
                                "send it at once.", headers={"Connection": "close"}) from None
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON ({exc}).") from None

    async def answer(route: str, request: Request, handle) -> Response:
        """Count, time, and map the queue's and the runtime's errors to status codes."""
        start = time.perf_counter()
        state.accepted += 1
        model = "-"
        try:
            model, response = await handle(start)
            outcome = "success"
        except ApiError as exc:
            response, outcome = api_error_response(exc), OUTCOMES.get(exc.status, "bad_input")
        except (InputError, OutputError, EmbedrtError) as exc:
            if isinstance(exc, QueueFullError):
                response, outcome = error_response(429, str(exc), code="queue_full", headers={"Retry-After": RETRY_AFTER_SECONDS}), "queue_full"
            elif isinstance(exc, QueueClosedError):
                response, outcome = error_response(503, str(exc), headers={"Retry-After": RETRY_AFTER_SECONDS}), "stopping"
            elif isinstance(exc, OutputError):
                response, outcome = error_response(500, str(exc)), "error"
            else:
                response, outcome = error_response(400, str(exc)), "bad_input"
        except ClientDisconnect:  # the client's doing, not a fault: one line, no traceback
            response, outcome = error_response(400, "the client closed the connection."), "client_closed"
            log.warning("embedrt serve: %s: the client closed the connection before sending its whole request.", route)
        except Exception:  # noqa: BLE001 - a fault: logged here, never sent to the caller
            log.exception("embedrt serve: fault on %s", route)
            response, outcome = error_response(500, "internal server error; the server log has the details."), "error"
        if outcome != "client_closed" and await request.is_disconnected():
            log.warning("embedrt serve: %s: the client closed the connection before its answer (%s).", route, outcome)
            outcome = "client_closed"
        state.answered += 1
        metrics.requests.labels(model, route, outcome).inc()
        metrics.request_duration.labels(model, route).observe(time.perf_counter() - start)
        return response

    async def wait(future, start: float):
        left = limits.request_timeout - (time.perf_counter() - start)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), max(left, 0.0))
        except asyncio.TimeoutError:
            future.cancel()  # not yet in a batch: it costs nothing more
            raise ApiError(503, f"the request was not answered within this server's timeout of {limits.request_timeout:g} s (--request-timeout); "
                                "retry later or send fewer inputs.", headers={"Retry-After": RETRY_AFTER_SECONDS}) from None

    async def embed_texts(served: ServedModel, call: EmbedCall, start: float, want: str):
        if call.token_ids is not None:
            future = served.queue.submit_token_ids(call.token_ids, truncate=call.truncate, output=want)
        elif sum(map(len, call.texts)) <= INLINE_TOKENIZE_CHARS:
            future = served.queue.submit(call.texts, truncate=call.truncate, output=want)
        else:
            future = await run_in_threadpool(served.queue.submit, call.texts, truncate=call.truncate, output=want)
        return await wait(future, start), future.tokens

    async def vectors_for(served: ServedModel, call: EmbedCall, start: float) -> tuple[np.ndarray, int]:
        """Sentence vectors as the call asks (normalised or not, leading dimensions)."""
        if call.dimensions is not None and call.dimensions > served.dim:
            raise ApiError(400, f"dimensions={call.dimensions} is more than the {served.dim} of model {served.name!r}.", param="dimensions")
        manifest = served.embedder.manifest
        if served.modality == "features":
            raise ApiError(400, f"model {served.name!r} is a feature model: POST its rows to /embed_records.", param="model")
        if served.modality == "image":
            if call.token_ids is not None:
                raise ApiError(400, f"model {served.name!r} is an image model: send base64 images or data URLs, not token ids.", param="input")
            images = [decode_image(item, i) for i, item in enumerate(call.texts or [])]
            future = await run_in_threadpool(served.queue.submit, images)
            vectors, tokens = await wait(future, start), 0
            normalized = manifest.normalize
        else:
            if call.texts is not None:
                check_chars(call.texts, "input", limits)  # texts only: base64 images are long by nature
            if call.normalize is False and manifest.normalize:
                per_text, tokens = await embed_texts(served, call, start, TOKENS)
                vectors, normalized = served.unnormalized(per_text), False
            else:
                vectors, tokens = await embed_texts(served, call, start, SENTENCE)
                normalized = manifest.normalize
        # leading dimensions are re-normalised unless normalize=false; TEI's normalize=true also normalises a model that does not
        renormalize = call.normalize is not False and (call.dimensions is not None or (call.normalize is True and not normalized))
        return resize(vectors, call.dimensions, served.dim, normalize=renormalize), tokens

    @app.post("/v1/embeddings", openapi_extra=_body_doc(OpenAIEmbeddingRequest), tags=["OpenAI"])
    async def openai_embeddings(request: Request):
        """OpenAI-compatible embeddings; `model` picks a text or an image model."""

        async def handle(start: float):
            call = parse_openai(await read_json(request, start), limits)
            served = state.model(call.model)
            vectors, tokens = await vectors_for(served, call, start)
            data = [{"object": "embedding", "index": i, "embedding": _encode(v, call.base64)} for i, v in enumerate(vectors)]
            body = {"object": "list", "data": data, "model": served.name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
            return served.name, JSONResponse(body)

        return await answer("/v1/embeddings", request, handle)

    @app.post("/embed", openapi_extra=_body_doc(TEIEmbedRequest), tags=["TEI"])
    async def tei_embed(request: Request):
        """text-embeddings-inference's /embed: one vector per input."""

        async def handle(start: float):
            call = parse_tei(await read_json(request, start), limits)
            served = state.model(call.model, text_only=True)
            vectors, _ = await vectors_for(served, call, start)
            return served.name, JSONResponse(vectors.tolist())

        return await answer("/embed", request, handle)

    @app.post("/embed_all", openapi_extra=_body_doc(TEIEmbedAllRequest), tags=["TEI"])
    async def tei_embed_all(request: Request):
        """text-embeddings-inference's /embed_all: one vector per token of each input."""

        async def handle(start: float):
            call = parse_tei(await read_json(request, start), limits, all_tokens=True)
            served = state.model(call.model, text_only=True)
            per_text, _ = await embed_texts(served, call, start, TOKENS)
            return served.name, JSONResponse([t.tolist() for t in per_text])

        return await answer("/embed_all", request, handle)

    @app.post("/embed_records", openapi_extra=_body_doc(RecordsRequest), tags=["embedrt"])
    async def embed_records(request: Request):
        """A feature model's rows (user or item tower) in, one vector a row out, in the rows' order."""

        async def handle(start: float):
            call = parse_records(await read_json(request, start), limits)
            served = state.model(call.model)
            if served.modality != "features":
                raise ApiError(400, f"model {served.name!r} is a {served.modality} model; /embed_records takes feature models.", param="model")
            future = await run_in_threadpool(served.queue.submit, call.records)
            vectors = await wait(future, start)
            data = [{"object": "embedding", "index": i, "embedding": _encode(v, call.base64)} for i, v in enumerate(vectors)]
            return served.name, JSONResponse({"object": "list", "data": data, "model": served.name})

        return await answer("/embed_records", request, handle)

    @app.get("/health", tags=["service"])
    async def health():
        """200 once every model is loaded and warmed up (they are before the server listens); 503 while stopping."""
        if state.stopping:
            return JSONResponse({"status": "stopping"}, status_code=503)
        return {"status": "ok", "models": list(state.models)}

    @app.get("/v1/models", tags=["OpenAI"])
    async def list_models():
        return {"object": "list", "data": [{"id": m.name, "object": "model", "owned_by": "embedrt"} for m in models]}

    @app.get("/info", tags=["service"])
    async def info():
        return {"version": embedrt.__version__, "limits": limits.__dict__, "api_key": bool(state.api_key),
                "models": [m.info() | {"manifest": json.loads(m.embedder.manifest.to_json())} for m in models]}

    @app.get("/metrics", tags=["service"])
    async def prometheus_metrics():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _encode(vector: np.ndarray, as_base64: bool) -> Any:
    if as_base64:  # little-endian float32, as the openai client decodes it
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector.tolist()
