"""The agronomists' inbox (`agent` scope): who is signed in, the queue, its live changes, one
escalation in detail, and closing without an answer. Claim, release and reply are in
`api.routes.handoff`; the page itself in `api.routes.inbox_page`."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Header, Query
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse

from alim.handoff import CLOSE_REASONS
from api.deps import AgentPartner, EngineDep, SettingsDep
from api.routes.handoff import AgentIn, EscalationId, EscalationList, EscalationOut, escalation_out
from api.schemas import ErrorBody
from api.sse import escalation_stream

router = APIRouter(tags=["inbox"])
Language = Literal["az", "en", "ru"]
Reason = Literal["low_confidence", "user_requested", "kept_by_expert"]


class AgentSession(BaseModel):
    partner: str = Field(description="The key's partner: the escalations the agent sees.")
    scopes: list[str]
    claim_timeout_seconds: float = Field(description="An idle claim lapses after this long.")


class Passage(BaseModel):
    title: str
    score: float = Field(description="How well the article matched the question.")
    text: str = Field(description="The article's sentences ALİM ranked best (may be empty).")
    article_id: str = ""


class HistoryMessageOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: str | None = None
    from_human: bool = False


class EscalationDetail(BaseModel):
    escalation: EscalationOut
    messages: list[HistoryMessageOut] = Field(description="The whole conversation, oldest first.")
    passages: list[Passage] = Field(description="What ALİM retrieved, best first.")
    profile: dict[str, object] = Field(description="The farm profile the turn had.")
    draft: str = Field(description="ALİM's answer from its evidence: a starting point to edit.")


class CloseIn(AgentIn):
    model_config = ConfigDict(extra="forbid")
    reason: Literal[CLOSE_REASONS] = Field(  # type: ignore[valid-type]
        description="Why it gets no answer; the farmer is told politely in their language."
    )


@router.get("/inbox/session", response_model=AgentSession)
async def session(partner: AgentPartner, settings: SettingsDep) -> AgentSession:
    """Check an agent key: its partner and scopes (the inbox's sign-in)."""
    return AgentSession(
        partner=partner.name,
        scopes=sorted(partner.scopes),
        claim_timeout_seconds=settings.claim_timeout,
    )


@router.get("/escalations/queue", response_model=EscalationList)
async def queue(
    partner: AgentPartner,
    engine: EngineDep,
    reason: Annotated[Reason | None, Query()] = None,
    language: Annotated[Language | None, Query()] = None,
    region: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
) -> EscalationList:
    """Open escalations, oldest first (the longest wait leads), filtered."""
    items = await engine.escalations.queue(
        partner.name, reason=reason, language=language, region=region
    )
    return EscalationList(escalations=[escalation_out(e, engine.claim_holder(e)) for e in items])


@router.get(
    "/escalations/events",
    response_class=EventSourceResponse,
    responses={422: {"model": ErrorBody}},
)
async def events(
    partner: AgentPartner,
    engine: EngineDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="`<updated_at>|<escalation id>` of the last event received: resume "
            "after it.",
        ),
    ] = None,
) -> EventSourceResponse:
    """Every change to this partner's escalations, as `escalation` events carrying its new
    state (new ones, claims, releases, farmers' messages, answers, closes), within about a
    second; `: ping` comments keep the connection open. Resumable with `Last-Event-ID`."""
    shutdown = anyio.Event()
    changes = engine.escalation_changes(partner.name, last_event_id, shutdown.is_set)
    return escalation_stream(
        changes,
        lambda e: escalation_out(e, engine.claim_holder(e)).model_dump_json(),
        shutdown=shutdown,
        ping=settings.sse_ping_seconds,
    )


@router.get(
    "/escalations/{escalation_id}",
    response_model=EscalationDetail,
    responses={404: {"model": ErrorBody}},
)
async def detail(
    escalation_id: EscalationId, partner: AgentPartner, engine: EngineDep
) -> EscalationDetail:
    """One escalation with its whole conversation (the farmer's messages sent while waiting
    included), the passages ALİM retrieved with their scores, and ALİM's draft answer."""
    found = await engine.escalation_detail(partner.name, escalation_id)
    return EscalationDetail(
        escalation=escalation_out(found.escalation, engine.claim_holder(found.escalation)),
        messages=[HistoryMessageOut.model_validate(m) for m in found.messages],
        passages=[Passage.model_validate(vars(p)) for p in found.passages],
        profile=found.profile,
        draft=found.draft,
    )


@router.post(
    "/escalations/{escalation_id}/close",
    response_model=EscalationOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def close(
    escalation_id: EscalationId, body: CloseIn, partner: AgentPartner, engine: EngineDep
) -> EscalationOut:
    """Close without an answer (`duplicate`, `spam`, `not_farming`): the farmer gets a polite
    notice in their language and may ask again; `conversation.closed` goes out."""
    escalation = await engine.close(partner.name, escalation_id, body.agent_id, body.reason)
    return escalation_out(escalation, None)
