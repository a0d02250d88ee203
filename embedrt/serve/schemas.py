"""Request bodies: their documented JSON schemas (OpenAI, TEI) and the checks that name the bad field and index.

Bodies are parsed here rather than by FastAPI's validation, so that every refusal says which input
and why in the OpenAI error shape; the pydantic models give the OpenAPI schema.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, List, Literal, Optional, Union

from pydantic import BaseModel, Field

from embedrt.serve.http_errors import ApiError
from embedrt.serve.limits import Limits

DATA_URL_PREFIX = "data:"


class OpenAIEmbeddingRequest(BaseModel):
    input: Union[str, List[str], List[int], List[List[int]]] = Field(
        description="A text, a list of texts, or token id lists of the model's own tokenizer; for an image model, base64 or data-URL images."
    )
    model: Optional[str] = Field(None, description="A served model's name; optional when one model is served.")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Optional[int] = Field(None, ge=1, description="Keep the leading dimensions, re-normalised.")
    user: Optional[str] = None
    truncate: bool = Field(True, description="embedrt extension: cut over-long texts (true) or refuse them (false).")


class TEIEmbedRequest(BaseModel):
    inputs: Union[str, List[str]]
    normalize: bool = True
    truncate: bool = False
    truncation_direction: Literal["Right", "right"] = "Right"
    prompt_name: Optional[str] = None
    dimensions: Optional[int] = Field(None, ge=1)
    model: Optional[str] = Field(None, description="embedrt extension: a served model's name (default: the first text model).")


class TEIEmbedAllRequest(BaseModel):
    inputs: Union[str, List[str]]
    truncate: bool = False
    truncation_direction: Literal["Right", "right"] = "Right"
    prompt_name: Optional[str] = None
    model: Optional[str] = None


@dataclass
class EmbedCall:
    """What a route asks of a model, checked."""

    model: str | None
    texts: list[str] | None  # or
    token_ids: list[list[int]] | None
    truncate: bool
    dimensions: int | None = None
    normalize: bool | None = None  # None: the model's own vectors (OpenAI has no such option); TEI says yes or no
    base64: bool = False


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {type(body).__name__}.")
    return body


def _optional(body: dict, key: str, kind: type | tuple, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise bad(f"{key} must be {getattr(kind, '__name__', kind)}, got {type(value).__name__}.", key)
    return value


def _dimensions(body: dict) -> int | None:
    dims = _optional(body, "dimensions", int, None)
    if dims is not None and dims < 1:
        raise bad(f"dimensions must be >= 1, got {dims}.", "dimensions")
    return dims


def check_texts(value: Any, field: str, limits: Limits, *, chars: bool = True) -> list[str]:
    """A string or a non-empty list of strings, within the limits; the first bad item is named.

    `chars=False` leaves the characters limit to the caller (it applies to texts, not to base64 images).
    """
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise bad(f"{field} must be a string or a list of strings, got {type(value).__name__}.", field)
    if not value:
        raise bad(f"{field} is an empty list; send at least one input.", field)
    if len(value) > limits.max_inputs:
        raise ApiError(413, f"{field} has {len(value)} items, more than this server's limit of {limits.max_inputs} per request (--max-inputs); split the request.", param=field)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            what = "null" if item is None else type(item).__name__
            raise bad(f"{field}[{i}] is {what}, not a string; send text only (use \"\" for an empty text).", field)
    if chars:
        check_chars(value, field, limits)
    return value


def check_chars(texts: list[str], field: str, limits: Limits) -> None:
    for i, item in enumerate(texts):
        if len(item) > limits.max_input_chars:
            raise ApiError(413, f"{field}[{i}] has {len(item)} characters, more than this server's limit of {limits.max_input_chars} (--max-input-chars); shorten it.", param=field)


def _token_ids(value: list, limits: Limits) -> list[list[int]] | None:
    """Token id input (a list of ints, or of lists of ints), or None when `value` holds text."""
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [value]
    if value and all(isinstance(v, list) for v in value):
        if len(value) > limits.max_inputs:
            raise ApiError(413, f"input has {len(value)} items, more than this server's limit of {limits.max_inputs} per request (--max-inputs); split the request.", param="input")
        for i, row in enumerate(value):
            if not row or not all(isinstance(t, int) and not isinstance(t, bool) for t in row):
                raise bad(f"input[{i}] must be a non-empty list of integer token ids.", "input")
            if len(row) > limits.max_input_chars:
                raise ApiError(413, f"input[{i}] has {len(row)} token ids, more than this server's limit of {limits.max_input_chars}; shorten it.", param="input")
        return value
    return None


def parse_openai(body: Any, limits: Limits) -> EmbedCall:
    body = _object(body)
    if "input" not in body:
        raise bad("input is missing: send a string or a list of strings.", "input")
    fmt = _optional(body, "encoding_format", str, "float")
    if fmt not in ("float", "base64"):
        raise bad(f"encoding_format={fmt!r}: use 'float' or 'base64'.", "encoding_format")
    model = _optional(body, "model", str, None)
    _optional(body, "user", str, None)
    truncate = _optional(body, "truncate", bool, True)
    value = body["input"]
    ids = _token_ids(value, limits) if isinstance(value, list) and value else None
    texts = None if ids is not None else check_texts(value, "input", limits, chars=False)  # images are long: see the route
    return EmbedCall(model, texts, ids, truncate, dimensions=_dimensions(body), base64=fmt == "base64")


def parse_tei(body: Any, limits: Limits, *, all_tokens: bool = False) -> EmbedCall:
    body = _object(body)
    if "inputs" not in body:
        raise bad("inputs is missing: send a string or a list of strings.", "inputs")
    texts = check_texts(body["inputs"], "inputs", limits)
    direction = _optional(body, "truncation_direction", str, "Right")
    if direction.lower() != "right":
        raise bad(f"truncation_direction={direction!r}: only 'Right' is supported.", "truncation_direction")
    if _optional(body, "prompt_name", str, None) is not None:
        raise bad("prompt_name: this server has no prompts; prepend the prompt to the text.", "prompt_name")
    call = EmbedCall(_optional(body, "model", str, None), texts, None, _optional(body, "truncate", bool, False), normalize=True)
    if not all_tokens:
        call.normalize = _optional(body, "normalize", bool, True)
        call.dimensions = _dimensions(body)
    return call


def decode_image(item: str, index: int) -> bytes:
    """A base64 string or a data URL (data:image/png;base64,...) -> the file's bytes."""
    data = item
    if item.startswith(DATA_URL_PREFIX):
        header, sep, data = item.partition(",")
        if not sep or not header.endswith(";base64"):
            raise bad(f"input[{index}] is a data URL without ';base64,'; send data:image/...;base64,<data>.", "input")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"input[{index}] is not valid base64; send an image file's bytes base64-encoded, or a data URL.", "input") from None
