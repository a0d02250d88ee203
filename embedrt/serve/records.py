"""POST /embed_records: a feature model's rows (user or item tower) in, one vector a row out.

Body: {"model": NAME (optional with one model), "records": [{column: value, ...}, ...], "encoding_format": "float"|"base64"}.
The rows' own checks (columns, dtypes, ranges) run in the queue's submit and come back as a 400 naming the column and row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from embedrt.serve.http_errors import ApiError
from embedrt.serve.limits import Limits
from embedrt.serve.schemas import bad


class RecordsRequest(BaseModel):
    model: str | None = Field(None, description="a served feature model; may be left out when the server serves one model")
    records: list[dict[str, Any]] = Field(..., description="one object a row: the model's columns (ids, lists of ids, floats)")
    encoding_format: str = Field("float", description="'float' or 'base64' (little-endian float32)")


@dataclass
class RecordsCall:
    model: str | None
    records: list[dict[str, Any]]
    base64: bool


def parse_records(body: Any, limits: Limits) -> RecordsCall:
    if not isinstance(body, dict):
        raise bad(f"the request body must be a JSON object, got {type(body).__name__}.")
    unknown = sorted(set(body) - {"model", "records", "encoding_format"})
    if unknown:
        raise bad(f"unknown field {unknown[0]!r}; the body holds model, records and encoding_format.", unknown[0])
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad(f"model must be a string, got {type(model).__name__}.", "model")
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise bad("records must be a non-empty list of objects, one a row.", "records")
    if len(records) > limits.max_inputs:
        raise ApiError(413, f"records has {len(records)} items, more than this server's limit of {limits.max_inputs} per request (--max-inputs); split the request.", param="records")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise bad(f"records[{i}] is a {type(record).__name__}; each record is an object of column -> value.", "records")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise bad(f"encoding_format must be 'float' or 'base64', got {encoding!r}.", "encoding_format")
    return RecordsCall(model, records, encoding == "base64")
