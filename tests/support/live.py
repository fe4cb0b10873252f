"""Real HTTP against a live `alim serve` (see tests.support.alim_serve): the partner's API key,
request bodies, whole streams as SSE events, thread histories."""

from __future__ import annotations

import time
import uuid
from contextlib import AbstractContextManager
from typing import Any

import httpx
from httpx_sse import EventSource, ServerSentEvent, connect_sse

from alim.settings import DEV_API_KEY

HEADERS = {"X-API-Key": DEV_API_KEY}
STREAM = "/api/v1/graph/stream"
INVOKE = "/api/v1/graph/invoke"
DROUGHT_QUESTION = "Quraqlıq zamanı pomidoru necə suvarım?"  # a long, multi-line answer
SHORT_QUESTION = "Salam, əkinçiliklə bağlı sualım var."
BUSY_WAIT = 15.0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def body(message: str, user_id: str, thread_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message, "user_id": user_id}
    if thread_id is not None:
        payload["thread_id"] = thread_id
    return payload


def client(base_url: str, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=HEADERS, timeout=timeout, trust_env=False)


def invoke(c: httpx.Client, message: str, user_id: str, thread_id: str | None) -> httpx.Response:
    return c.post(INVOKE, json=body(message, user_id, thread_id))


def history(c: httpx.Client, thread_id: str, user_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/api/v1/threads/{thread_id}", params={"user_id": user_id})
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


def open_stream(
    c: httpx.Client,
    message: str,
    user_id: str,
    thread_id: str | None = None,
    **fields: Any,
) -> AbstractContextManager[EventSource]:
    """A stream as it comes, to read as much of it as a test wants (`iter_sse()`); `fields`:
    more body fields (`on_disconnect="cancel"`)."""
    return connect_sse(c, "POST", STREAM, json={**body(message, user_id, thread_id), **fields})


def resume_stream(
    c: httpx.Client, run_id: str, user_id: str, last_event_id: str | None = None
) -> AbstractContextManager[EventSource]:
    """`GET /runs/{run_id}/stream`, after `last_event_id` (the `Last-Event-ID` header)."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    return connect_sse(
        c, "GET", f"/api/v1/runs/{run_id}/stream", params={"user_id": user_id}, headers=headers
    )


def stream_events(
    c: httpx.Client, message: str, user_id: str, thread_id: str | None = None
) -> list[ServerSentEvent]:
    """One whole stream, as parsed SSE events (heartbeat comments are not events)."""
    with open_stream(c, message, user_id, thread_id) as source:
        assert source.response.status_code == 200, source.response.read()
        return list(source.iter_sse())


def answer_of(events: list[ServerSentEvent]) -> str:
    return "".join(e.data for e in events if e.event == "token")


def invoke_when_free(
    c: httpx.Client,
    message: str,
    user_id: str,
    thread_id: str,
    wait: float = BUSY_WAIT,
    pause: float = 0.25,
) -> tuple[httpx.Response, int]:
    """Invoke, retrying every `pause` s while the thread is busy (409 thread_busy) for up to
    `wait` s. Returns the last response and how many 409s came before it."""
    deadline = time.monotonic() + wait
    busy = 0
    while True:
        r = invoke(c, message, user_id, thread_id)
        if r.status_code != 409 or time.monotonic() > deadline:
            return r, busy
        assert r.json()["code"] == "thread_busy", r.text
        busy += 1
        time.sleep(pause)
