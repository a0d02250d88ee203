"""The server's limits: each a flag of `embedrt serve`, each refused with a 4xx that names it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from embedrt.errors import EmbedrtError


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 8 * 1024 * 1024  # room for a few base64 images; texts need far less
    max_inputs: int = 256  # per request
    max_input_chars: int = 16384  # per text; the tokenizer's work grows with it even when the model truncates
    max_concurrent: int = 512  # unanswered requests per model before 429
    request_timeout: float = 30.0  # seconds from the end of the headers to the answer: a body still unread then is a 408, an answer a 503
    header_timeout: float = 10.0  # seconds from a connection's start (or its last answer) to the end of the next request's headers

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise EmbedrtError(f"--{name.replace('_', '-')} must be > 0, got {value}.")

    def describe(self) -> str:
        return (f"body {self.max_body_bytes} bytes, {self.max_inputs} inputs/request, {self.max_input_chars} chars/input, "
                f"{self.max_concurrent} unanswered requests/model, timeout {self.request_timeout:g} s, headers within {self.header_timeout:g} s")
