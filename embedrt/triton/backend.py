"""TritonBackend: embedrt's Backend interface over tritonclient (HTTP or gRPC), for one model on a server.

`TextEmbedder(export_dir, backend=TritonBackend(url, "NAME_encoder"))` tokenises, batches and pools
here exactly as in-process, and runs the graph on the server. Token ids are padded to the server's
length multiple (embedrt.triton.padding) so that concurrent clients' requests share shapes and
the server's dynamic batcher can merge them.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any, Sequence

import numpy as np

from embedrt.errors import TritonError
from embedrt.triton.padding import pad_tokens, padded_length

PROTOCOLS = ("http", "grpc")
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_UNREACHABLE = ("StatusCode.UNAVAILABLE", "failed to connect", "connection refused", "Connection refused")


def _client_module(protocol: str):
    if protocol not in PROTOCOLS:
        raise TritonError(f"protocol={protocol!r} is not one of {', '.join(PROTOCOLS)}.")
    try:
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
    except ImportError as exc:
        raise TritonError(f"the Triton {protocol} client is not installed: pip install 'embedrt[triton-client]' ({exc}).") from exc
    return module


def _wire_type(data_type: str) -> str:
    """A config data_type (TYPE_FP32, TYPE_STRING) as the inference protocol names it (FP32, BYTES)."""
    name = data_type.removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


class TritonBackend:
    """One model on one Triton server. Thread-safe: each thread gets its own client connection."""

    is_padded = True

    def __init__(self, url: str, model: str, protocol: str = "http", *, timeout_s: float = 60.0, retries: int = 3, retry_wait_s: float = 0.25) -> None:
        self.url, self.model, self.protocol = url, model, protocol
        self.timeout_s, self.retries, self.retry_wait_s = timeout_s, retries, retry_wait_s
        self._module = _client_module(protocol)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self.config = self._model_config()
        self.input_names = tuple(i["name"] for i in self.config["input"])
        self.output_names = tuple(o["name"] for o in self.config["output"])
        self._wire = {i["name"]: _wire_type(i["data_type"]) for i in self.config["input"]}
        params = {k: v.get("string_value") for k, v in (self.config.get("parameters") or {}).items()}
        self.pad_multiple = int(params["embedrt_pad_multiple"]) if "embedrt_pad_multiple" in params else None
        self.pad_token_id = int(params.get("embedrt_pad_token_id") or 0)
        self.max_length = int(params.get("embedrt_max_length") or 0)
        self.max_batch_rows = int(params.get("embedrt_max_batch_rows") or 0)  # models Triton does not batch (feature rows)

    # -- Backend interface --------------------------------------------------------------------------
    @property
    def max_batch_size(self) -> int:
        return int(self.config.get("max_batch_size") or self.max_batch_rows or 1)

    @property
    def providers(self) -> list[str]:
        return [f"triton:{self.protocol}://{self.url}/{self.model}"]

    def run(self, inputs: dict[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        names = list(output_names or self.output_names)
        feed = {name: inputs[name] for name in self.input_names}
        length = None
        if self.pad_multiple and all(n in TOKEN_INPUTS for n in feed):
            length = next(iter(feed.values())).shape[1]
            feed = pad_tokens(feed, padded_length(length, self.pad_multiple, max(self.max_length, length)), self.pad_token_id)
        result = self.infer(feed, names)
        if length is not None:  # token vectors back to the caller's length
            result = {n: (a[:, :length] if a.ndim >= 3 else a) for n, a in result.items()}
        return result

    # -- the wire ----------------------------------------------------------------------------------------
    def infer(self, feed: dict[str, np.ndarray], output_names: Sequence[str]) -> dict[str, np.ndarray]:
        module = self._module
        request = []
        for name, array in feed.items():
            item = module.InferInput(name, list(array.shape), self._wire.get(name, "BYTES"))
            item.set_data_from_numpy(array)
            request.append(item)
        wanted = [module.InferRequestedOutput(n) for n in output_names]
        shapes = {n: tuple(a.shape) for n, a in feed.items()}
        kwargs = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
        reply = self._call(lambda c: c.infer(self.model, request, outputs=wanted, **kwargs), f"inputs of shapes {shapes}")
        return {n: reply.as_numpy(n) for n in output_names}

    def statistics(self) -> dict[str, Any]:
        """The server's inference statistics of this model, as JSON (counts of requests and of executed batches)."""
        if self.protocol == "grpc":
            stats = self._call(lambda c: c.get_inference_statistics(self.model, as_json=True, client_timeout=self.timeout_s), "statistics")
        else:
            stats = self._call(lambda c: c.get_inference_statistics(self.model), "statistics")
        return stats["model_stats"][0]

    def _model_config(self) -> dict[str, Any]:
        if self.protocol == "grpc":
            config = self._call(lambda c: c.get_model_config(self.model, as_json=True, client_timeout=self.timeout_s), "its config")["config"]
        else:
            config = self._call(lambda c: c.get_model_config(self.model), "its config")
        for io in config.get("input", []) + config.get("output", []):
            io.setdefault("data_type", "TYPE_FP32")
        return config

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            if self.protocol == "http":
                client = self._module.InferenceServerClient(self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s)
            else:
                client = self._module.InferenceServerClient(self.url)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _call(self, fn, what: str):
        """fn(client), retried on connection errors (at most `retries` times), server errors made TritonErrors."""
        from tritonclient.utils import InferenceServerException

        for attempt in range(self.retries + 1):
            try:
                return fn(self._client())
            except InferenceServerException as exc:
                message = exc.message() or str(exc)
                if any(s in f"{exc.status()} {message}" for s in _UNREACHABLE) and attempt < self.retries:
                    time.sleep(self.retry_wait_s * 2**attempt)
                    continue
                raise self._error(message, str(exc.status()), what) from None
            except TimeoutError as exc:  # not retried: a slow model stays slow
                raise self._error(f"timed out ({exc})", "timeout", what) from None
            except http.client.HTTPException as exc:  # not retried: the server went away while it held the request
                raise TritonError(
                    f"Triton at {self.protocol}://{self.url} closed the connection while model {self.model!r} had {what} "
                    f"({type(exc).__name__}: {exc}); the server stopped or crashed: its log says why."
                ) from None
            except (ConnectionError, OSError) as exc:  # the HTTP client's socket errors
                if attempt < self.retries:
                    time.sleep(self.retry_wait_s * 2**attempt)
                    continue
                raise self._error(str(exc), "unreachable", what) from None
        raise AssertionError("unreachable")

    def _error(self, message: str, status: str, what: str) -> TritonError:
        where = f"Triton at {self.protocol}://{self.url}"
        lowered = message.lower()
        if status == "unreachable" or any(s.lower() in f"{status} {lowered}" for s in _UNREACHABLE):
            return TritonError(f"no {where} answers after {self.retries + 1} attempts ({message}); start one with `embedrt triton serve REPOSITORY` or check the URL and protocol.")
        if "deadline" in lowered or "timed out" in lowered or "timeout" in lowered:
            return TritonError(f"{where}: model {self.model!r} gave no answer for {what} within {self.timeout_s:g} s ({message}); raise timeout_s or send smaller batches.")
        if "unknown model" in lowered or "not found" in lowered or "is not ready" in lowered or "no version" in lowered:
            return TritonError(f"{where} has no ready model {self.model!r} ({message}); models there: {self._ready_models()}.")
        if "shape" in lowered or "dims" in lowered or "batch size" in lowered or "datatype" in lowered:
            return TritonError(f"{where}: model {self.model!r} refused {what}: {message}")
        return TritonError(f"{where}: model {self.model!r} failed on {what}: {message}")

    def _ready_models(self) -> list[str]:
        try:
            client = self._client()
            index = client.get_model_repository_index(as_json=True) if self.protocol == "grpc" else client.get_model_repository_index()
            models = index.get("models", []) if isinstance(index, dict) else index
            return sorted(m["name"] for m in models if m.get("state") == "READY")
        except Exception:  # only a hint for the message
            return []

    def close(self) -> None:
        """Close every connection this backend opened (before the server stops, or its shutdown waits for them)."""
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            try:
                client.close()
            except Exception:
                pass
        self._local = threading.local()

    def __enter__(self) -> "TritonBackend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
