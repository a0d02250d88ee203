"""The API key: `Authorization: Bearer KEY` on every route but /health, compared in constant time."""

from __future__ import annotations

import hmac

API_KEY_ENV = "EMBEDRT_API_KEY"
OPEN_PATHS = frozenset({"/health"})


def authorized(header: str | None, api_key: str) -> bool:
    scheme, _, token = (header or "").partition(" ")
    # compare_digest on bytes: constant time whatever the length or content of the token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())
