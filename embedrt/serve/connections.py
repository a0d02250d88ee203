"""Connections that never finish their request headers are closed: uvicorn times out idle keep-alive connections
only, and any byte, however slow, resets that timer (one byte every few seconds held a connection for ever)."""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("embedrt.serve")


class HeaderDeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a deadline from the connection's start (or its last answer) to the end of the
    next request's headers; a request still incomplete then gets a 408, and the connection is closed."""

    def __init__(self, *args, header_timeout: float, on_timeout: Callable[[], None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout, self.on_timeout = header_timeout, on_timeout
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_after = None  # the cycle (request) that was current when the deadline was armed
        self._received = False  # bytes of the awaited request arrived

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._received = self._received or bool(data)
        super().data_received(data)
        if self._deadline is not None and self.cycle is not self._waiting_after:
            self._disarm()  # the headers are complete: from here the app's --request-timeout covers the body and answer

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.cycle is not None and self.cycle.response_complete and not self.pipeline:
            self._arm()

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._waiting_after, self._received = self.cycle, False
        self._deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._received:  # a request began and its headers did not follow in time: say so, count it
            message = f"the request headers did not arrive within this server's timeout of {self.header_timeout:g} s (--header-timeout)."
            log.warning("embedrt serve: %s:%s: closed a connection: %s", *(self.client or ("?", "?")), message)
            self.on_timeout()
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
                                 + str(len(message)).encode() + b"\r\nconnection: close\r\n\r\n" + message.encode())
        self.transport.close()  # an idle connection is closed without a word, as after a keep-alive


def header_deadline_protocol(header_timeout: float, on_timeout: Callable[[], None]):
    """The protocol class to give uvicorn.Config(http=...)."""
    return functools.partial(HeaderDeadlineProtocol, header_timeout=header_timeout, on_timeout=on_timeout)
