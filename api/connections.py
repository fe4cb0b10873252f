"""Connection limits uvicorn lacks, as its HTTP protocol classes (`alim serve` passes them as
uvicorn's `http=`).

uvicorn closes an idle keep-alive connection (`timeout_keep_alive`) and can cap connections in
total (`limit_concurrency`), but a client that connects and then sends its request headers
slowly, or half of them, holds its connection for ever (slowloris), and one address may open as
many connections as it likes. Here:

- **Header deadline**: a request's headers must be complete within `header_timeout` seconds of
  the connection opening (or of the first byte of a later request on a kept-alive connection);
  otherwise the connection is closed, with a `408` (`request_timeout`) when part of a request had
  arrived. The body has its own idle timeout (`api.middleware`, ALIM_BODY_READ_TIMEOUT).
- **Connections per address**: a connection beyond `max_per_ip` open ones from the same client
  address gets a `429` (`too_many_connections`) and is closed at once; other addresses are not
  affected. Behind a proxy every connection comes from the proxy's address: set 0 (off) there
  and let the proxy limit its clients.

Both are per server process; the counts are read from uvicorn's own set of open connections.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from alim.settings import Settings, get_settings

log = logging.getLogger("alim.api")


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    """Seconds for a request's headers to arrive; 0: no deadline."""
    max_per_ip: int
    """Open connections per client address; 0: no cap."""

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.header_read_timeout, settings.max_connections_per_ip)


def _response(status: str, code: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail, "code": code, "request_id": None}).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


HEADER_TIMEOUT_RESPONSE = _response(
    "408 Request Timeout", "request_timeout", "the request headers did not arrive in time"
)
TOO_MANY_CONNECTIONS_RESPONSE = _response(
    "429 Too Many Requests", "too_many_connections", "too many open connections from this address"
)


class ConnectionGuard(asyncio.Protocol):
    """The limits, mixed into a uvicorn protocol class (before it in the bases). Subclasses
    call `_headers_started()` when a request begins and `_headers_done()` once its headers are
    parsed."""

    # Set by uvicorn's protocol classes.
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None
    connections: set[Any]

    limits: ClassVar[ConnectionLimits | None] = None
    """None: from the process settings (ALIM_HEADER_READ_TIMEOUT, ALIM_MAX_CONNECTIONS_PER_IP)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = self.limits or ConnectionLimits.of(get_settings())
        self._header_timer: asyncio.TimerHandle | None = None
        self._partial = False
        """Part of a request has arrived since the deadline was set."""
        self.refused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # joins uvicorn's set of open connections
        host = self.client[0] if self.client else None
        cap = self._limits.max_per_ip
        if cap and host is not None:
            open_here = sum(
                1
                for c in self.connections
                if not getattr(c, "refused", False) and c.client and c.client[0] == host
            )
            if open_here > cap:
                self.refused = True
                log.info("connection refused: %d open from its address", open_here - 1)
                self.transport.write(TOO_MANY_CONNECTIONS_RESPONSE)
                self.transport.close()
                return
        self._headers_started()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_done()
        super().connection_lost(exc)

    def _headers_started(self) -> None:
        if self._limits.header_timeout > 0 and self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self._limits.header_timeout, self._headers_late
            )

    def _headers_done(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        self._partial = False

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self._partial:
            self.transport.write(HEADER_TIMEOUT_RESPONSE)
        self.transport.close()

    def _received(self, data: bytes) -> None:
        if self._header_timer is not None and data:
            self._partial = True


class GuardedHttpToolsProtocol(ConnectionGuard, HttpToolsProtocol):
    """uvicorn's httptools protocol (its default with uvicorn[standard]) with the limits."""

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)  # parser callbacks below run inside
        self._received(data)

    def on_message_begin(self) -> None:
        self._headers_started()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._headers_done()
        super().on_headers_complete()


class GuardedH11Protocol(ConnectionGuard, H11Protocol):
    """uvicorn's pure-Python h11 protocol with the limits."""

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        if self.conn.their_state is h11.IDLE:
            self._headers_started()  # a later request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._received(data)
        else:
            self._headers_done()


def protocol_class(kind: str = "auto") -> str:
    """The import path of the guarded protocol for uvicorn's `http=` ("auto": httptools when
    installed, as uvicorn chooses). A path, not a class, so that worker processes import it."""
    if kind == "auto":
        try:
            import httptools  # noqa: F401
        except ImportError:  # pragma: no cover - uvicorn[standard] brings it
            kind = "h11"
        else:
            kind = "httptools"
    name = {"httptools": "GuardedHttpToolsProtocol", "h11": "GuardedH11Protocol"}[kind]
    return f"{__name__}:{name}"
