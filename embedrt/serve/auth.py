"""The API key: `Authorization: Bearer KEY` on every route but /health, compared in constant time."""

from __future__ import annotations

import hmac

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from embedrt.serve.http_errors import error_response

OPEN_PATHS = frozenset({"/health"})


def authorized(header: str | None, api_key: str) -> bool:
    scheme, _, token = (header or "").partition(" ")
    # compare_digest on bytes: constant time whatever the length or content of the token
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


class ApiKeyMiddleware:
    """401 without the key. Plain ASGI: Starlette's BaseHTTPMiddleware costs every request a task group and streams."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in OPEN_PATHS and not authorized(Headers(scope=scope).get("authorization"), self.api_key):
            response = error_response(401, "missing or wrong API key: send the header 'Authorization: Bearer <key>'.", code="invalid_api_key",
                                      headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
