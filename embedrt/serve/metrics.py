"""Prometheus metrics, named for what they time as TEI's are: requests by outcome, queue / tokenisation /
inference latency, batch sizes and tokens, queue depth. One registry per app."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOKEN_BUCKETS = (16, 32, 64, 128, 256, 512, 768, 1024, 2048, 4096, 16384)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("embedrt_requests", "HTTP requests answered, by route and outcome", ["model", "route", "outcome"], registry=r)
        self.request_duration = Histogram("embedrt_request_duration_seconds", "Arrival to answer", ["model", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_duration = Histogram("embedrt_queue_duration_seconds", "Time a request waited for its batch round", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.tokenization_duration = Histogram("embedrt_tokenization_duration_seconds", "Tokenising (or decoding images of) a request", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.inference_duration = Histogram("embedrt_inference_duration_seconds", "Round start to a request's last vector", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.request_inputs = Histogram("embedrt_request_inputs", "Inputs per request", ["model"], buckets=SIZE_BUCKETS, registry=r)
        self.request_tokens = Counter("embedrt_request_tokens", "Tokens embedded, from requests", ["model"], registry=r)
        self.batch_size = Histogram("embedrt_batch_size", "Inputs per engine batch", ["model"], buckets=SIZE_BUCKETS, registry=r)
        self.batch_tokens = Histogram("embedrt_batch_tokens", "Tokens per engine batch (unpadded)", ["model"], buckets=TOKEN_BUCKETS, registry=r)
        self.batch_duration = Histogram("embedrt_batch_inference_duration_seconds", "One engine run", ["model"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("embedrt_queue_depth", "Requests submitted and not yet answered", ["model"], registry=r)

    def observer(self, model: str) -> "QueueObserver":
        return QueueObserver(self, model)

    def watch_depth(self, model: str, depth: Callable[[], int]) -> None:
        self.queue_depth.labels(model=model).set_function(depth)


class QueueObserver:
    """The queue's Observer for one model."""

    def __init__(self, metrics: Metrics, model: str) -> None:
        m = metrics
        self._batch = (m.batch_size.labels(model), m.batch_tokens.labels(model), m.batch_duration.labels(model))
        self._request = (m.tokenization_duration.labels(model), m.queue_duration.labels(model), m.inference_duration.labels(model),
                         m.request_inputs.labels(model), m.request_tokens.labels(model))

    def on_batch(self, size: int, tokens: int, seconds: float) -> None:
        size_h, tokens_h, duration_h = self._batch
        size_h.observe(size)
        tokens_h.observe(tokens)
        duration_h.observe(seconds)

    def on_request(self, outcome: str, *, prepare: float, queued: float, inference: float, inputs: int, tokens: int) -> None:
        tokenize_h, queue_h, inference_h, inputs_h, tokens_c = self._request
        tokenize_h.observe(prepare)
        if outcome == "success":
            queue_h.observe(queued)
            inference_h.observe(inference)
            inputs_h.observe(inputs)
            tokens_c.inc(tokens)
