"""`Idempotency-Key`: a retried POST returns the first request's outcome instead of running again.

The first request with a key claims it (`alim.runs.RunStore.claim_key`, one row per partner and
key) and binds it to the run it starts. A repeat with the same body gets that run (invoke: its
result; stream: its events, replayed then followed); the same key with another body is refused
(422 `idempotency_key_reused`); a repeat that arrives before the first has started its run waits
a moment, then gets 409 `idempotency_in_progress`. A request refused before its run started
(invalid, thread busy) releases the key: its retry runs. Keys live as long as the run log
(`ALIM_RUN_EVENTS_TTL`).

Side effects that are not runs (an agronomist's reply, an article, feedback) keep their response
under the key instead (`once`): a repeat gets the same status and body.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from alim.errors import Conflict, InvalidRequest
from alim.runs import IdempotencyClaim, RunStore

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        description="Any 1–255 printable ASCII characters (a UUID): a repeat of this request "
        "with the same key returns the first one's result instead of acting twice.",
        json_schema_extra={"pattern": _KEY.pattern},  # checked by key_of (a stable code)
    ),
]
LastEventIdHeader = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="`<run_id>:<seq>` of the last event received: resume after it.",
        json_schema_extra={"pattern": r"^[\x21-\x7e]{1,200}$"},
    ),
]
BIND_WAIT_SECONDS = 2.0
"""How long a repeat waits for the first request to start its run."""


def key_of(request: Request) -> str | None:
    """The request's idempotency key, if any (422 `invalid_idempotency_key` when unusable)."""
    value = request.headers.get(HEADER)
    if value is None:
        return None
    if not _KEY.match(value):
        raise InvalidRequest(
            "Idempotency-Key must be 1–255 printable ASCII characters without spaces",
            code="invalid_idempotency_key",
        )
    return value


def request_hash(request: Request, body: BaseModel | dict[str, Any] | bytes) -> str:
    """What makes two requests "the same": the method, the path and the body."""
    if isinstance(body, BaseModel):
        payload = json.dumps(body.model_dump(mode="json"), sort_keys=True).encode()
    elif isinstance(body, dict):
        payload = json.dumps(body, sort_keys=True, default=str).encode()
    else:
        payload = body
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode())
    digest.update(payload)
    return digest.hexdigest()


def _reused() -> InvalidRequest:
    return InvalidRequest(
        "this Idempotency-Key was used with another request", code="idempotency_key_reused"
    )


def _in_progress() -> Conflict:
    return Conflict(
        "a request with this Idempotency-Key is still being processed; retry shortly",
        code="idempotency_in_progress",
    )


async def _first(
    store: RunStore,
    partner: str,
    key: str,
    digest: str,
    ready: Callable[[IdempotencyClaim], bool],
) -> IdempotencyClaim:
    """The key's claim: fresh for the first request; for a repeat of the same request, the
    first one's once `ready` (it started its run, it kept its response), waited for a moment."""
    found = await store.claim_key(partner, key, digest)
    if found.fresh:
        return found
    if found.request_hash != digest:
        raise _reused()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BIND_WAIT_SECONDS
    while not ready(found) and loop.time() < deadline:
        await asyncio.sleep(0.05)
        found = await store.key_row(partner, key) or found
    if not ready(found):
        raise _in_progress()
    return found


async def claim(store: RunStore, partner: str, key: str, digest: str) -> str | None:
    """None when this request is the first with the key (it must run, then `bind`); else the
    run the first one started."""
    found = await _first(store, partner, key, digest, lambda c: c.run_id is not None)
    return None if found.fresh else found.run_id


async def once(
    request: Request,
    store: RunStore,
    partner: str,
    body: BaseModel | dict[str, Any] | bytes,
    act: Callable[[], Awaitable[Any]],
    status_code: int = 200,
) -> Any:
    """`act()` once per idempotency key: its result is kept under the key, and a repeat of the
    request gets it back (same status, same body, `Idempotent-Replayed: true`). A request that
    fails releases the key, so its retry acts."""
    key = key_of(request)
    if key is None:
        return await act()
    found = await _first(
        store, partner, key, request_hash(request, body), lambda c: c.response is not None
    )
    if not found.fresh:
        return JSONResponse(
            found.response,
            status_code=found.status_code or status_code,
            headers={REPLAYED_HEADER: "true"},
        )
    try:
        result = await act()
    except BaseException:
        await store.release_key(partner, key)
        raise
    await store.keep_response(partner, key, status_code, jsonable_encoder(result))
    return result
