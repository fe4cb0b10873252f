"""Real HTTP servers on 127.0.0.1 for tests: run an ASGI app with uvicorn in a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

from bench.procs import free_port

__all__ = ["free_port", "serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int | None = None, **config: Any) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 until the block ends; yields the base URL. `config`: more
    `uvicorn.Config` arguments (e.g. `http=`)."""
    port = port or free_port()
    server_config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **config
    )
    server = uvicorn.Server(server_config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
