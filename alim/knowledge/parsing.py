"""Uploads are parsed in a worker process with a wall-clock budget.

Text extraction (pypdf above all) is CPU work on a file a partner chose: limits on pages, text
and expansion (`alim.knowledge.uploads`) stop the large ones, but a small file can still be slow
to read (a PDF of a few kilobytes whose pages decompress into millions of drawing operators). A
thread cannot be stopped, so each upload is read in a child process, killed when the budget
(ALIM_UPLOAD_PARSE_SECONDS) runs out: the upload gets 422 `document_too_slow` and the server's
CPU is its own again.

Children come from a forkserver that has imported the parser already (started on the first
upload, not at import), so each upload costs a fork, not an interpreter start.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from multiprocessing.connection import Connection
from typing import Any

from alim.errors import AlimError, InvalidRequest
from alim.knowledge.uploads import Document, parse_upload

log = logging.getLogger(__name__)
JOIN_SECONDS = 5.0
"""How long to wait for a killed or finished worker to be reaped."""


def _context() -> Any:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["alim.knowledge.uploads"])
    return context


def _work(conn: Connection, filename: str, data: bytes, options: dict[str, Any]) -> None:
    """In the worker: the parsed document, or the error it raised, back through `conn`."""
    try:
        conn.send(("ok", parse_upload(filename, data, **options)))
    except AlimError as exc:
        conn.send(("error", type(exc), exc.message, exc.code, exc.status))
    except Exception as exc:  # a parser's own failure on a hostile file: the file's fault
        conn.send(("crash", f"{type(exc).__name__}: {exc}"[:500]))
    finally:
        conn.close()


def parse_with_budget(filename: str, data: bytes, *, budget: float, **options: Any) -> Document:
    """`parse_upload` in a worker process, killed after `budget` seconds (blocking)."""
    context = _context()
    receive, send = context.Pipe(duplex=False)
    worker = context.Process(
        target=_work, args=(send, filename, data, options), name="alim-upload-parser", daemon=True
    )
    worker.start()
    send.close()
    try:
        if not receive.poll(budget):
            raise InvalidRequest(
                f"the document could not be read within {budget:g} s", code="document_too_slow"
            )
        try:
            outcome = receive.recv()
        except EOFError:  # the worker died without an answer (killed for memory, a crash)
            outcome = ("crash", f"the parser exited with {worker.exitcode}")
    finally:
        receive.close()
        if worker.is_alive():
            worker.kill()
        worker.join(JOIN_SECONDS)
    if outcome[0] == "ok":
        document: Document = outcome[1]
        return document
    if outcome[0] == "error":
        _, kind, message, code, status = outcome
        raise kind(message, code=code, status=status)
    log.warning("reading an upload (%s) failed: %s", filename[-80:], outcome[1])
    raise InvalidRequest("the document could not be read", code="invalid_document")


async def parse_upload_in_worker(
    filename: str, data: bytes, *, budget: float, **options: Any
) -> Document:
    """`parse_with_budget` off the event loop: other requests go on meanwhile."""
    return await asyncio.to_thread(parse_with_budget, filename, data, budget=budget, **options)
