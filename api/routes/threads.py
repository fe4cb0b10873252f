"""Thread list, history and deletion, for the owner (partner key + user_id) only; with a
publishable key the owner is the verified visitor, whatever `user_id` says."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from alim.threads import Owner
from api.deps import ChatCaller, EngineDep
from api.schemas import (
    THREAD_ID_PATTERN,
    USER_ID_PATTERN,
    ErrorBody,
    MessageOut,
    ThreadDetail,
    ThreadList,
    ThreadSummary,
)

router = APIRouter(prefix="/threads", tags=["threads"])
UserId = Annotated[str, Query(pattern=USER_ID_PATTERN, description="The thread owner's user id.")]
ThreadId = Annotated[str, Path(pattern=THREAD_ID_PATTERN)]
NOT_FOUND: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorBody, "description": "No such thread for this key and user."}
}


@router.get("", response_model=ThreadList)
async def list_threads(
    user_id: UserId,
    caller: ChatCaller,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ThreadList:
    """The user's threads, newest first."""
    infos = await engine.threads.list(
        Owner(caller.partner.name, caller.user(user_id)), limit, offset
    )
    return ThreadList(
        threads=[
            ThreadSummary(
                thread_id=t.thread_id,
                title=t.title,
                created_at=t.created_at,
                updated_at=t.updated_at,
                message_count=t.message_count,
                status=t.status,
            )
            for t in infos
        ]
    )


@router.get("/{thread_id}", response_model=ThreadDetail, responses=NOT_FOUND)
async def get_thread(
    thread_id: ThreadId, user_id: UserId, caller: ChatCaller, engine: EngineDep
) -> ThreadDetail:
    """A thread's messages, oldest first."""
    info, messages = await engine.history(
        Owner(caller.partner.name, caller.user(user_id)), thread_id
    )
    return ThreadDetail(
        thread_id=info.thread_id,
        title=info.title,
        created_at=info.created_at,
        updated_at=info.updated_at,
        status=info.status,
        messages=[MessageOut.model_validate(m) for m in messages],
    )


@router.delete("/{thread_id}", status_code=204, responses=NOT_FOUND)
async def delete_thread(
    thread_id: ThreadId, user_id: UserId, caller: ChatCaller, engine: EngineDep
) -> Response:
    """Delete a thread with all its checkpoints."""
    await engine.delete_thread(Owner(caller.partner.name, caller.user(user_id)), thread_id)
    return Response(status_code=204)
