"""A TCP proxy on 127.0.0.1 that drops connections: a flaky mobile network, for tests.

`CuttingProxy(target_port, cuts=[600, None])` forwards every connection to the target; the n-th
connection is closed (both ways, abruptly) once `cuts[n]` bytes of the answer have passed; None,
or a connection past the list, is never cut. `cut_request=(b"POST /api/v1/graph/stream", 900)`
instead cuts the first connection that sends such a request, 900 bytes into its answer (a
browser reuses connections, so counting connections would not say which request is cut).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator, Sequence

from tests.support.servers import free_port


class CuttingProxy:
    def __init__(
        self,
        target_port: int,
        cuts: Sequence[int | None] = (),
        cut_request: tuple[bytes, int] | None = None,
    ):
        self.target_port = target_port
        self.cuts = list(cuts)
        self.cut_request = cut_request
        self.port = free_port()
        self.connections = 0
        self.cut = 0
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closing = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                n = self.connections
                self.connections += 1
            limit = self.cuts[n] if n < len(self.cuts) else None
            threading.Thread(target=self._serve, args=(client, limit), daemon=True).start()

    def _serve(self, client: socket.socket, limit: int | None) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        armed: dict[str, int] = {}  # the answer's budget, once the marked request went out

        def pump(src: socket.socket, dst: socket.socket, budget: int | None) -> None:
            sent = 0
            try:
                while True:
                    data = src.recv(512)
                    if not data:
                        break
                    if src is client and self.cut_request is not None:
                        marker, after = self.cut_request
                        with self._lock:
                            if marker in data and self.cut == 0 and "budget" not in armed:
                                armed["budget"] = after
                    if src is upstream and "budget" in armed:
                        if budget is None:
                            budget, sent = armed["budget"], 0
                    if budget is not None and sent + len(data) >= budget:
                        dst.sendall(data[: max(budget - sent, 0)])
                        with self._lock:
                            self.cut += 1
                        break
                    dst.sendall(data)
                    sent += len(data)
            except OSError:
                pass
            finally:
                for sock in (client, upstream):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                    with contextlib.suppress(OSError):
                        sock.close()

        threading.Thread(target=pump, args=(client, upstream, None), daemon=True).start()
        pump(upstream, client, limit)

    @contextlib.contextmanager
    def running(self) -> Iterator[CuttingProxy]:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._closing.set()
            self._listener.close()
            thread.join(timeout=5)
