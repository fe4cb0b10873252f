"""`POST /graph/invoke` and `POST /graph/stream`: one turn of a thread."""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from dataclasses import replace

from fastapi import APIRouter, Request, Response
from sse_starlette import EventSourceResponse

from alim.errors import AlimError, InvalidRequest, ThreadBusy
from alim.keys import Partner
from alim.threads import Owner, thread_key
from api import idempotency
from api.deps import ChatCaller, EngineDep, LimiterDep, SettingsDep
from api.schemas import ChatRequest, ErrorBody, InvokeResponse
from api.sse import run_stream
from engine import Context, Engine, LiveRun, TurnRequest, parse_event_id

router = APIRouter(prefix="/graph", tags=["graph"])

# The other error answers are documented for every route (api.schemas.COMMON_ERRORS).
ERRORS: dict[int | str, dict[str, object]] = {
    409: {
        "model": ErrorBody,
        "description": "`thread_busy` (another run is in progress on the thread) or "
        "`idempotency_in_progress` (the first request with this Idempotency-Key has not "
        "started yet). A thread that waits for an agronomist takes the message and "
        "acknowledges it (`route: human`).",
    },
}

STREAM_DOC = """Server-Sent Events, in this order:

0. `event: queued` — `{"thread_id", "run_id"}`, only with `multitask_strategy: "enqueue"` while
   the thread is busy: the run waits for the thread's current run;
1. `event: metadata` — `{"thread_id": …, "run_id": …}` (a new thread's id arrives here);
2. `event: node` — the name of each graph node as it starts (`route`, `retrieve`,
   `retrieve_weather`, `assess`, `generate`, `escalate`);
3. `event: token` — chunks of the answer (newlines split into several `data:` lines, per the
   SSE spec);
4. `event: sources` — `{"sources", "confidence", "escalated", "escalation_reason", "route",
   "model", "usage"}`;
5. `event: error` — `{"code", "detail"}` if the run fails (`cancelled`, `run_lost`,
   `server_shutting_down`, `provider_unavailable`…);
6. `event: done` — `[DONE]`, always last, also after an error.

Every event carries `id: <run_id>:<seq>` (seq from 1). The run goes on when the connection drops
(unless `on_disconnect` is `"cancel"`): resume with `GET /runs/{run_id}/stream` and the
`Last-Event-ID` header, or repeat this POST with the same `Idempotency-Key` and `Last-Event-ID`.
`: ping` comments keep long runs alive. Errors found before the stream starts (auth, validation,
`thread_busy`) are ordinary JSON responses with their status code."""


def turn_request(body: ChatRequest, partner: Partner, *, stream_tokens: bool = True) -> TurnRequest:
    options = body.search_options.model_dump() if body.search_options else {}
    return TurnRequest(
        stream_tokens=stream_tokens,
        message=body.message,
        owner=Owner(partner.name, body.user_id),
        thread_id=body.thread_id,
        profile=body.profile.model_dump(exclude_none=True) if body.profile else None,
        context=Context(language=body.language, **options),
        metadata=dict(body.metadata or {}),
        datasets=requested_datasets(body.dataset_id),
        include_bundled=body.include_bundled,
    )


def requested_datasets(value: str | list[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    found = (value,) if isinstance(value, str) else tuple(value)
    if len(found) > 20 or any(not d or len(d) > 64 for d in found):
        raise InvalidRequest(
            "dataset_id: one dataset id or a list of at most 20", code="validation_error"
        )
    return found


async def start_run(
    engine: Engine,
    request: Request,
    body: ChatRequest,
    partner: Partner,
    held: AsyncExitStack | None = None,
    *,
    stream_tokens: bool = True,
) -> tuple[str, bool]:
    """(run id, replayed): the run this request starts, or with a repeated `Idempotency-Key`
    the one its first request started. `held` (the stream slot) goes to a new run."""
    key = idempotency.key_of(request)
    store = engine.runs.store
    if key is not None:
        run_id = await idempotency.claim(
            store, partner.name, key, idempotency.request_hash(request, body)
        )
        if run_id is not None:
            if held is not None:
                await held.aclose()
            await engine.runs.info(Owner(partner.name, body.user_id), run_id)  # still there?
            return run_id, True
    try:
        asked = turn_request(body, partner, stream_tokens=stream_tokens)
        run = await launch(engine, asked, body.multitask_strategy, held)
    except BaseException:
        if key is not None:
            await store.release_key(partner.name, key)
        if held is not None:
            await held.aclose()
        raise
    if key is not None:
        await store.bind_key(partner.name, key, run.run_id)
    return run.run_id, False


async def launch(
    engine: Engine, request: TurnRequest, strategy: str, held: AsyncExitStack | None
) -> LiveRun:
    """Begin the turn and run it; with `enqueue`, a busy thread (or one with runs already
    waiting here) makes it wait its turn instead of refusing it."""
    if strategy != "enqueue":
        return await engine.runs.launch(await engine.begin(request), held)
    request = engine.check(request)
    thread_id = request.thread_id or str(uuid.uuid4())
    request = replace(request, thread_id=thread_id)
    key = thread_key(request.owner, thread_id)
    run_id = str(uuid.uuid4())
    if not engine.runs.queued(key):
        try:
            return await engine.runs.launch(await engine.begin(request, run_id), held)
        except ThreadBusy:
            pass
    return await engine.runs.enqueue(
        lambda: engine.begin(request, run_id), run_id, request.owner, (key, thread_id), held
    )


def replayed_header(replayed: bool) -> dict[str, str]:
    return {idempotency.REPLAYED_HEADER: "true"} if replayed else {}


@router.post("/invoke", response_model=InvokeResponse, responses=ERRORS)
async def invoke(
    body: ChatRequest,
    request: Request,
    response: Response,
    caller: ChatCaller,
    engine: EngineDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> InvokeResponse:
    """Send a message and wait for the whole answer.

    With an `Idempotency-Key` header, a repeat of the same request returns the first one's
    answer (`Idempotent-Replayed: true`) and adds no second turn."""
    body, partner = caller.bind(body), caller.partner
    run_id, replayed = await start_run(engine, request, body, partner, stream_tokens=False)
    info = await engine.runs.wait(Owner(partner.name, body.user_id), run_id)
    response.headers.update(replayed_header(replayed))
    if info.result is None:
        error = info.error or {}
        raise AlimError(
            str(error.get("detail", "the run failed")),
            code=str(error.get("code", "internal_error")),
            status=int(error.get("status", 500)),
        )
    return InvokeResponse(**info.result)


@router.post(
    "/stream",
    responses={200: {"content": {"text/event-stream": {}}, "description": STREAM_DOC}, **ERRORS},
    response_class=EventSourceResponse,
    description=STREAM_DOC,
)
async def stream(
    body: ChatRequest,
    request: Request,
    caller: ChatCaller,
    engine: EngineDep,
    settings: SettingsDep,
    limiter: LimiterDep,
    idempotency_key: idempotency.KeyHeader = None,
    last_event_id: idempotency.LastEventIdHeader = None,
) -> EventSourceResponse:
    """Send a message and receive the answer as it is generated."""
    body, partner = caller.bind(body), caller.partner
    held = AsyncExitStack()  # the stream slot, released when the run ends
    await held.enter_async_context(limiter.stream_slot(partner))
    run_id, replayed = await start_run(engine, request, body, partner, held)
    after = 0
    if replayed:
        after = last_event_seq(request, run_id)
    return run_stream(
        run_id,
        engine.runs.follow_batches(run_id, after),
        ping=settings.sse_ping_seconds,
        grace=settings.shutdown_grace_seconds,
        stop=lambda code: engine.runs.stop_id(run_id, code),
        cancel_on_disconnect=body.on_disconnect == "cancel" and not replayed,
        gauge=request.app.state.metrics.active_streams,
        headers=replayed_header(replayed),
    )


def last_event_seq(request: Request, run_id: str) -> int:
    """The seq to resume after: `?after=`, else the `Last-Event-ID` header, else 0."""
    value = request.query_params.get("after") or request.headers.get("Last-Event-ID")
    try:
        return parse_event_id(value, run_id) or 0
    except ValueError as exc:
        raise InvalidRequest(
            f"Last-Event-ID / after must be '<run_id>:<seq>' of this run: {exc}",
            code="invalid_last_event_id",
        ) from exc
