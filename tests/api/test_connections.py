"""The connection limits of `alim serve` (api.connections) on both of uvicorn's HTTP protocols,
over real sockets to a small app served in a thread. `tests/reliability/test_slow_clients.py`
runs the same attack against a real `alim serve`."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from api.connections import (
    ConnectionGuard,
    ConnectionLimits,
    GuardedH11Protocol,
    GuardedHttpToolsProtocol,
)
from tests.support.servers import serve_in_thread

TIMEOUT = 0.4
CAP = 2


def _ok(_: Any) -> PlainTextResponse:
    return PlainTextResponse("ok")


APP = Starlette(routes=[Route("/", _ok)])


@pytest.fixture(params=[GuardedHttpToolsProtocol, GuardedH11Protocol])
def port(request: pytest.FixtureRequest) -> Any:
    protocol = type(
        request.param.__name__,
        (request.param,),
        {"limits": ConnectionLimits(header_timeout=TIMEOUT, max_per_ip=CAP)},
    )
    assert issubclass(protocol, ConnectionGuard)
    with serve_in_thread(APP, http=protocol) as url:
        yield int(url.rsplit(":", 1)[1])


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def test_half_sent_headers_get_408_after_the_deadline_whole_requests_do_not(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        answer = _read_all(sock)
        waited = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and json.loads(body)["code"] == "request_timeout"
    assert TIMEOUT * 0.9 <= waited < TIMEOUT + 2
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        # A kept-alive connection: idle past the deadline between requests, then a second one.
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(TIMEOUT * 1.5)


def test_connections_beyond_the_cap_per_address_are_refused_at_once(port: int) -> None:
    held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(CAP)]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as extra:
            started = time.monotonic()
            answer = _read_all(extra)
            assert time.monotonic() - started < TIMEOUT
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 429")
        assert json.loads(body)["code"] == "too_many_connections"
        with socket.create_connection(
            ("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0)
        ) as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert other.recv(4096).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()
