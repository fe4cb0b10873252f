"""A run's status, its stream resumed after a dropped connection, and cancelling it; for the
run's owner (partner key + user_id) only: anyone else gets 404, as for threads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sse_starlette import EventSourceResponse

from alim.runs import RunInfo
from alim.threads import Owner
from api.deps import ChatPartner, EngineDep, SettingsDep
from api.idempotency import LastEventIdHeader
from api.routes.graph import last_event_seq
from api.schemas import USER_ID_PATTERN, ErrorBody, InvokeResponse, RunError, RunOut
from api.sse import run_stream

router = APIRouter(prefix="/runs", tags=["runs"])
UserId = Annotated[str, Query(pattern=USER_ID_PATTERN, description="The run owner's user id.")]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{1,64}$")]
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such run for this key and user."}
}

RESUME_DOC = """The run's events after `Last-Event-ID` (header, `<run_id>:<seq>`) or `?after=<seq>`
(none: from the first), the same bytes as the first stream sent, then the live run until `done`.
Works while the run goes on, after it ended (for `ALIM_RUN_EVENTS_TTL`, 24 h by default), from
another replica on the same PostgreSQL, and after the server that ran it died: then the logged
events are followed by `error` (`run_lost`) and `done`."""


def run_out(info: RunInfo) -> RunOut:
    return RunOut(
        run_id=info.run_id,
        thread_id=info.thread_id,
        status=info.status,
        created_at=info.created_at,
        updated_at=info.updated_at,
        finished_at=info.finished_at,
        result=InvokeResponse(**info.result) if info.result else None,
        error=RunError(code=info.error["code"], detail=info.error["detail"])
        if info.error
        else None,
    )


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND)
async def get_run(
    run_id: RunId, user_id: UserId, partner: ChatPartner, engine: EngineDep
) -> RunOut:
    """The run's status; once it has ended, the same result body as `/graph/invoke`."""
    return run_out(await engine.runs.info(Owner(partner.name, user_id), run_id))


@router.get(
    "/{run_id}/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": RESUME_DOC}, **NOT_FOUND},
    description=RESUME_DOC,
)
async def resume_stream(
    run_id: RunId,
    user_id: UserId,
    request: Request,
    partner: ChatPartner,
    engine: EngineDep,
    settings: SettingsDep,
    after: Annotated[int | None, Query(ge=0, description="Resume after this seq.")] = None,
    last_event_id: LastEventIdHeader = None,
) -> EventSourceResponse:
    """Resume a run's stream (see the description)."""
    await engine.runs.info(Owner(partner.name, user_id), run_id)
    return run_stream(
        run_id,
        engine.runs.follow_batches(run_id, last_event_seq(request, run_id)),
        ping=settings.sse_ping_seconds,
        grace=settings.shutdown_grace_seconds,
        stop=lambda code: engine.runs.stop_id(run_id, code),
        gauge=request.app.state.metrics.active_streams,
    )


@router.post("/{run_id}/cancel", response_model=RunOut, responses=NOT_FOUND)
async def cancel_run(
    run_id: RunId, user_id: UserId, partner: ChatPartner, engine: EngineDep
) -> RunOut:
    """Stop the run within a second, whichever replica runs it; its stream ends with `error`
    (`cancelled`) and `done`, and the thread keeps no half answer. A run that has already
    ended is left as it is."""
    return run_out(await engine.runs.cancel(Owner(partner.name, user_id), run_id))
