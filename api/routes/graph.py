"""`POST /graph/invoke` and `POST /graph/stream`: one turn of a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import asdict

import anyio
from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from alim.keys import Partner
from alim.threads import Owner
from api.deps import ChatPartner, EngineDep, LimiterDep, SettingsDep
from api.schemas import ChatRequest, ErrorBody, InvokeResponse
from api.sse import to_sse, until_shutdown, with_outcome
from engine import Context, TurnRequest

router = APIRouter(prefix="/graph", tags=["graph"])

# The other error answers are documented for every route (api.schemas.COMMON_ERRORS).
ERRORS: dict[int | str, dict[str, object]] = {
    409: {
        "model": ErrorBody,
        "description": "`thread_busy` (another run is in progress on the thread) or "
        "`awaiting_human` (the thread waits for an agronomist's reply).",
    },
}

STREAM_DOC = """Server-Sent Events, in this order:

1. `event: metadata` — `{"thread_id": …, "run_id": …}` (a new thread's id arrives here);
2. `event: node` — the name of each graph node as it starts (`route`, `retrieve`,
   `retrieve_weather`, `assess`, `generate`, `escalate`);
3. `event: token` — chunks of the answer (newlines split into several `data:` lines, per the
   SSE spec);
4. `event: sources` — `{"sources", "confidence", "escalated", "escalation_reason", "route",
   "model", "usage"}`;
5. `event: error` — `{"code", "detail"}` if the run fails;
6. `event: done` — `[DONE]`, always last, also after an error.

`: ping` comments keep long runs alive. Errors found before the stream starts (auth, validation,
`thread_busy`) are ordinary JSON responses with their status code."""


def turn_request(body: ChatRequest, partner: Partner) -> TurnRequest:
    options = body.search_options.model_dump() if body.search_options else {}
    return TurnRequest(
        message=body.message,
        owner=Owner(partner.name, body.user_id),
        thread_id=body.thread_id,
        profile=body.profile.model_dump(exclude_none=True) if body.profile else None,
        context=Context(language=body.language, **options),
        metadata=dict(body.metadata or {}),
    )


@router.post("/invoke", response_model=InvokeResponse, responses=ERRORS)
async def invoke(body: ChatRequest, partner: ChatPartner, engine: EngineDep) -> InvokeResponse:
    """Send a message and wait for the whole answer."""
    result = await engine.invoke(turn_request(body, partner))
    return InvokeResponse(**asdict(result))


@router.post(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}, **ERRORS},
    response_class=EventSourceResponse,
    description=STREAM_DOC,
)
async def stream(
    body: ChatRequest,
    request: Request,
    partner: ChatPartner,
    engine: EngineDep,
    settings: SettingsDep,
    limiter: LimiterDep,
) -> EventSourceResponse:
    """Send a message and receive the answer as it is generated."""
    held = AsyncExitStack()  # the stream slot and the thread lock, released exactly once
    await held.enter_async_context(limiter.stream_slot(partner))
    gauge = request.app.state.metrics.active_streams
    gauge.inc()
    held.callback(gauge.dec)
    try:
        turn = await engine.begin(turn_request(body, partner))
    except BaseException:
        await held.aclose()
        raise
    held.push_async_callback(turn.aclose)

    shutdown = anyio.Event()
    grace = settings.shutdown_grace_seconds

    async def events() -> AsyncIterator[ServerSentEvent]:
        # On SIGTERM the run may finish within the grace period; if not, it is stopped and the
        # stream still ends with `error` then `done`.
        try:
            run = with_outcome(turn.events())
            async for event in until_shutdown(run, shutdown, max(grace - 1.0, 0.5)):
                yield to_sse(event)
        finally:
            await held.aclose()

    return EventSourceResponse(
        events(),
        ping=settings.sse_ping_seconds,
        background=BackgroundTask(held.aclose),  # if the client left before the first event
        headers={"X-Accel-Buffering": "no"},
        shutdown_event=shutdown,
        shutdown_grace_period=grace,
    )
