"""Engine events → SSE events: a pure translation, unit-tested without HTTP.

Event order: `metadata` (thread_id, run_id) → `node` (each node as it starts) → `token` (answer
chunks; sse-starlette splits a chunk with newlines into several `data:` lines, so a spec parser
gets the text back exactly) → `sources` → `error` (on failure) → `done` (`[DONE]`, always last).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, suppress
from dataclasses import asdict
from typing import Any

from sse_starlette import ServerSentEvent

from alim.errors import AlimError
from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
)


def to_sse(event: Event) -> ServerSentEvent:
    if isinstance(event, TokenEvent):
        return ServerSentEvent(data=event.text, event="token")
    if isinstance(event, NodeEvent):
        return ServerSentEvent(data=event.name, event="node")
    if isinstance(event, MetadataEvent):
        return ServerSentEvent(data=json.dumps(asdict(event)), event="metadata")
    if isinstance(event, SourcesEvent):
        return ServerSentEvent(data=json.dumps(asdict(event), ensure_ascii=False), event="sources")
    if isinstance(event, ErrorEvent):
        return ServerSentEvent(data=json.dumps(asdict(event), ensure_ascii=False), event="error")
    if isinstance(event, DoneEvent):
        return ServerSentEvent(data="[DONE]", event="done")
    raise TypeError(f"not an engine event: {event!r}")


async def with_outcome(events: AsyncGenerator[Event]) -> AsyncGenerator[Event]:
    """The engine's events, then `done`; a typed error of the run becomes `error` + `done`.

    This is the one place where a run's failure turns into events."""
    try:
        async with aclosing(events):
            async for event in events:
                yield event
    except AlimError as exc:
        yield ErrorEvent(exc.code, exc.message)
    yield DoneEvent()


SHUTDOWN_DETAIL = "the server is restarting; please send the message again"


async def until_shutdown(
    events: AsyncGenerator[Event], shutdown: Any, budget: float
) -> AsyncIterator[Event]:
    """Pass `events` through; once `shutdown` (an event with `is_set()` / `wait()`) is set, let
    the run go on for at most `budget` seconds, then stop it and end with error + done.

    The run's own clean-up (thread lock, no half answer stored) happens when it is closed."""
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    waiter = asyncio.ensure_future(shutdown.wait())
    pending: asyncio.Future[Event] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(events))
            if deadline is None and shutdown.is_set():
                deadline = loop.time() + budget
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            watch = {pending} if deadline is not None else {pending, waiter}
            done, _ = await asyncio.wait(
                watch, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if pending in done:
                try:
                    event = pending.result()
                except StopAsyncIteration:
                    return
                pending = None
                yield event
            elif deadline is not None and loop.time() >= deadline:
                break
        pending.cancel()
        with suppress(asyncio.CancelledError, StopAsyncIteration):
            await pending
        pending = None
        await events.aclose()
        yield ErrorEvent("server_shutting_down", SHUTDOWN_DETAIL)
        yield DoneEvent()
    finally:
        waiter.cancel()
        if pending is not None:
            pending.cancel()
