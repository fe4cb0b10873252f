"""Engine events → SSE events, and the SSE response that follows a run.

Event order: `metadata` (thread_id, run_id) → `node` (each node as it starts) → `token` (answer
chunks; sse-starlette splits a chunk with newlines into several `data:` lines, so a spec parser
gets the text back exactly) → `sources` → `error` (on failure) → `done` (`[DONE]`, always last).
Every event of a run carries `id: <run_id>:<seq>` (seq from 1), so a client that lost the
connection resumes with `Last-Event-ID` (`GET /runs/{run_id}/stream`). The inbox's stream of
escalation changes (`escalation_stream`) is endless, with ids `<updated_at>|<escalation id>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

from sse_starlette import EventSourceResponse, ServerSentEvent

from alim.errors import AlimError
from alim.events import DoneEvent, ErrorEvent, Event, wire
from alim.handoff import Escalation
from alim.runs import LoggedEvent
from engine.inbox import event_id as inbox_event_id

if TYPE_CHECKING:
    import anyio


def to_sse(event: Event) -> ServerSentEvent:
    name, data = wire(event)
    return ServerSentEvent(data=data, event=name)


def logged_to_sse(run_id: str, event: LoggedEvent) -> ServerSentEvent:
    return ServerSentEvent(data=event.data, event=event.event, id=f"{run_id}:{event.seq}")


def encode_batch(run_id: str, batch: list[LoggedEvent]) -> bytes:
    """Several events as one write: one send through the middleware and one TCP segment where
    there were as many as events (a fast model's tokens arrive faster than a phone reads)."""
    return b"".join(logged_to_sse(run_id, event).encode() for event in batch)


async def with_outcome(events: AsyncGenerator[Event]) -> AsyncGenerator[Event]:
    """The engine's events, then `done`; a typed error of the run becomes `error` + `done`
    (for callers that consume a turn directly; HTTP runs get theirs from `engine.runs`)."""
    try:
        async with aclosing(events):
            async for event in events:
                yield event
    except AlimError as exc:
        yield ErrorEvent(exc.code, exc.message)
    yield DoneEvent()


class ShutdownTimer:
    """Given to sse-starlette as a response's `shutdown_event`: when the server starts to drain,
    sse-starlette calls `set()`, and `stop` runs `budget` seconds later unless the stream has
    ended by then (`cancel()`). A timer armed on shutdown, not a task per stream waiting for it
    (sse-starlette only calls `set()` on its `shutdown_event`)."""

    __slots__ = ("_budget", "_ended", "_handle", "_stop")

    def __init__(self, budget: float, stop: Callable[[], None]) -> None:
        self._budget = budget
        self._stop = stop
        self._handle: asyncio.TimerHandle | None = None
        self._ended = False

    def set(self) -> None:
        if self._handle is None and not self._ended:
            self._handle = asyncio.get_running_loop().call_later(self._budget, self._stop)

    def cancel(self) -> None:
        """The stream has ended: nothing left to stop."""
        self._ended = True
        if self._handle is not None:
            self._handle.cancel()


def run_stream(
    run_id: str,
    batches: AsyncGenerator[list[LoggedEvent]],
    *,
    ping: float,
    grace: float,
    stop: Callable[[str], None],
    cancel_on_disconnect: bool = False,
    gauge: Any = None,
    headers: dict[str, str] | None = None,
) -> EventSourceResponse:
    """The SSE response that follows a run. On SIGTERM the run may finish within the grace
    period; if not, it is stopped and the stream still ends with `error` then `done`. A client
    that leaves stops the run only with `cancel_on_disconnect`."""
    # The run gets the grace period less a second, so that its `error` and `done` still go out
    # before sse-starlette cancels the response at the end of the grace period.
    timer = ShutdownTimer(max(grace - 1.0, 0.5), lambda: stop("server_shutting_down"))

    async def body() -> AsyncIterator[bytes]:
        if gauge is not None:
            gauge.inc()
        ended = False
        try:
            async with aclosing(batches) as followed:
                async for batch in followed:
                    yield encode_batch(run_id, batch)
            ended = True
        finally:
            timer.cancel()
            if gauge is not None:
                gauge.dec()
            if not ended and cancel_on_disconnect:
                stop("cancelled")

    return EventSourceResponse(
        body(),
        ping=ping,
        headers={"X-Accel-Buffering": "no", **(headers or {})},
        shutdown_event=cast("anyio.Event", timer),
        shutdown_grace_period=grace,
    )


def escalation_stream(
    changes: AsyncGenerator[Escalation],
    render: Callable[[Escalation], str],
    *,
    shutdown: Any,
    ping: float,
) -> EventSourceResponse:
    """The inbox's endless stream: one `escalation` event per change, its id the resume cursor.
    It ends when the server shuts down (`shutdown` is set; the changes generator watches it)."""

    async def body() -> AsyncIterator[ServerSentEvent]:
        async with aclosing(changes) as followed:
            async for escalation in followed:
                yield ServerSentEvent(
                    data=render(escalation), event="escalation", id=inbox_event_id(escalation)
                )

    return EventSourceResponse(
        body(),
        ping=ping,
        headers={"X-Accel-Buffering": "no"},
        shutdown_event=shutdown,
        shutdown_grace_period=2.0,
    )
