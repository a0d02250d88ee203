"""Python data -> protobuf text format, as Triton's config.pbtxt takes it. No protobuf needed to write one.

dicts are messages, lists of dicts are repeated messages, lists of scalars are repeated scalars,
`Enum("TYPE_FP32")` is an enum value, and a map field is a list of {"key": ..., "value": ...} messages.
"""

from __future__ import annotations

import json
from typing import Any


class Enum(str):
    """An enum value: written bare (TYPE_FP32), not quoted."""


def render(message: dict[str, Any], indent: int = 0) -> str:
    pad = "  " * indent
    lines: list[str] = []
    for key, value in message.items():
        if value is None:
            continue
        if isinstance(value, dict):
            lines.append(f"{pad}{key} {{\n{render(value, indent + 1)}{pad}}}")
        elif isinstance(value, (list, tuple)):
            if value and isinstance(value[0], dict):
                lines.extend(f"{pad}{key} {{\n{render(item, indent + 1)}{pad}}}" for item in value)
            elif value:
                lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "".join(line + "\n" for line in lines)


def _scalar(value: Any) -> str:
    if isinstance(value, Enum):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))  # a JSON string literal is a valid protobuf text string literal for these contents


def parameters(values: dict[str, Any]) -> list[dict[str, Any]]:
    """Triton's `parameters` map (string values only)."""
    return [{"key": k, "value": {"string_value": str(v)}} for k, v in values.items()]


def string_map(values: dict[str, str]) -> list[dict[str, str]]:
    """A map<string, string> field such as an ensemble step's input_map."""
    return [{"key": k, "value": v} for k, v in values.items()]
