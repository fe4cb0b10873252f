"""Slowloris on the headers and a flood of connections from one address, against a real
`alim serve` over real sockets (issue 16, item 12).

30 connections from 127.0.0.1 each send half of a request's headers and wait. With
ALIM_MAX_CONNECTIONS_PER_IP=8 the first 8 are served (and held), the other 22 get 429
`too_many_connections` and are closed at once; a client from another address (127.0.0.2) is
served meanwhile. ALIM_HEADER_READ_TIMEOUT later closes the 8 with 408 `request_timeout`, after
which 127.0.0.1 is served again.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.alim_serve import new_server, supervised

pytestmark = pytest.mark.slow

HALF_OPEN = 30
CAP = 8
HEADER_TIMEOUT = 1.5
HALF_REQUEST = b"GET /api/v1/threads HTTP/1.1\r\nHost: alim\r\nX-API-Key: dev-"


def _status_and_code(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["code"]


def _health_from(source: str, port: int) -> int:
    """GET /health over a socket bound to `source` (another loopback address is another
    client address)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: alim\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    return int(answer.split()[1])


@pytest.mark.timeout(120)
def test_half_sent_headers_time_out_and_one_address_cannot_hold_every_connection(
    tmp_path: Path,
) -> None:
    server = new_server(
        tmp_path,
        ALIM_HEADER_READ_TIMEOUT=str(HEADER_TIMEOUT),
        ALIM_MAX_CONNECTIONS_PER_IP=str(CAP),
        ALIM_EMBEDDER="hashing",  # retrieval plays no part here: no model, instant index
    )
    with supervised(server):
        server.start()
        port = server.port
        assert port is not None
        opened: dict[socket.socket, float] = {}
        ended: dict[socket.socket, tuple[float, bytes]] = {}
        received: dict[socket.socket, bytes] = {}
        selector = selectors.DefaultSelector()
        try:
            for _ in range(HALF_OPEN):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(HALF_REQUEST)
                sock.setblocking(False)
                opened[sock] = time.monotonic()
                received[sock] = b""
                selector.register(sock, selectors.EVENT_READ)
            other_address = None
            deadline = time.monotonic() + HEADER_TIMEOUT + 10
            while len(ended) < HALF_OPEN and time.monotonic() < deadline:
                for key, _ in selector.select(timeout=0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        chunk = sock.recv(4096)
                    except ConnectionResetError:
                        chunk = b""
                    received[sock] += chunk
                    if not chunk:
                        ended[sock] = (time.monotonic() - opened[sock], received[sock])
                        selector.unregister(sock)
                if other_address is None and len(ended) == HALF_OPEN - CAP:
                    # The flood is refused and 8 are held: another client is still served.
                    other_address = _health_from("127.0.0.2", port)
        finally:
            selector.close()
            for sock in opened:
                sock.close()

        assert len(ended) == HALF_OPEN, f"{HALF_OPEN - len(ended)} connections still open"
        refused = [e for e in ended.values() if e[1] and _status_and_code(e[1])[0] == 429]
        timed_out = [e for e in ended.values() if e not in refused]
        assert len(refused) == HALF_OPEN - CAP and len(timed_out) == CAP
        assert {_status_and_code(answer) for _, answer in refused} == {
            (429, "too_many_connections")
        }
        assert {_status_and_code(answer) for _, answer in timed_out} == {(408, "request_timeout")}
        assert max(seconds for seconds, _ in refused) < HEADER_TIMEOUT  # at once
        timeouts = sorted(seconds for seconds, _ in timed_out)
        assert HEADER_TIMEOUT * 0.9 <= timeouts[0] and timeouts[-1] < HEADER_TIMEOUT + 3, timeouts
        assert other_address == 200
        # The held connections are gone: the address is served again, a whole request is not
        # cut by the header deadline.
        with httpx.Client(base_url=server.base_url, trust_env=False) as c:
            assert c.get("/health").status_code == 200
            time.sleep(HEADER_TIMEOUT + 0.5)  # a kept-alive connection outlives the deadline
            assert c.get("/health").status_code == 200
        print(
            f"\n[slow clients] refused in <= {max(s for s, _ in refused):.2f}s, held ones "
            f"closed after {timeouts[0]:.2f}-{timeouts[-1]:.2f}s"
        )
