"""Escalations for human agronomists (`agent` scope) and signed webhooks."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from alim.webhooks import EVENTS, Delivery
from api import idempotency
from api.deps import AgentPartner, ChatPartner, EngineDep
from api.schemas import ErrorBody, Source

router = APIRouter(tags=["handoff"])
EscalationId = Annotated[str, Path(pattern=r"^esc_[0-9a-f]{16}$")]
WebhookId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$")]


class EscalationOut(BaseModel):
    id: str
    thread_id: str
    user_id: str
    question: str
    reason: Literal["low_confidence", "user_requested"] | str
    confidence: float | None
    sources: list[Source]
    status: Literal["open", "resolved", "cancelled", "closed"] | str
    created_at: str
    resolved_at: str | None = None
    answer: str | None = None
    agent_id: str | None = None
    followups: list[str] = Field(
        default_factory=list,
        description="What the farmer wrote while waiting for the answer, oldest first.",
    )
    claimed_by: str | None = Field(
        None,
        description="The agent working on it: no other agent can claim or answer it until they "
        "release it or leave it idle for the claim timeout (then this is null again).",
    )
    claimed_at: str | None = None
    updated_at: str = Field("", description="When it last changed (claim, message, answer…).")
    language: str | None = Field(None, description="The farmer's language (az, en, ru).")
    route: str | None = Field(None, description="How ALİM read the question.")
    region: str | None = Field(None, description="The farm profile's region.")
    crops: list[str] = Field(default_factory=list, description="The farm profile's crops.")
    close_reason: Literal["duplicate", "spam", "not_farming"] | None = Field(
        None, description="Why it was closed without an answer (status `closed`)."
    )


class EscalationList(BaseModel):
    escalations: list[EscalationOut]


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str = Field(
        min_length=1,
        max_length=8000,
        description="The agronomist's answer.",
        examples=["Damcı suvarmanı gecə aparın, malç çəkin."],
    )
    agent_id: str = Field(min_length=1, max_length=128, examples=["agronomist_17"])
    next: Literal["alim", "expert"] = Field(
        "alim",
        description="Who takes the farmer's next message: ALİM (default), or this expert (a new "
        "escalation, claimed by them, waits for it).",
    )


class AgentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(min_length=1, max_length=128, examples=["agronomist_17"])


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=8, max_length=2000, examples=["https://partner.example/hooks"])
    events: list[Literal[EVENTS]] = Field(  # type: ignore[valid-type]
        min_length=1, description="Events to deliver.", examples=[["conversation.escalated"]]
    )


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    created_at: str
    state: Literal["closed", "open", "half_open"] = Field(
        "closed",
        description="The endpoint's circuit breaker: `closed` (deliveries are attempted), "
        "`open` (after repeated failures deliveries are parked, not attempted, until "
        "`disabled_until`; their log says `circuit open`), `half_open` (one trial delivery "
        "decides: success closes it and the parked deliveries follow, failure opens it again "
        "for longer).",
    )
    consecutive_failures: int = Field(0, description="Failed attempts in a row.")
    disabled_until: str | None = Field(
        None, description="While `open`: when the trial delivery is due (ISO 8601, UTC)."
    )
    secret: str | None = Field(
        None,
        description="Signing secret: returned once, at creation. Verify "
        "X-Webhook-Signature = sha256=HMAC-SHA256(secret, raw body).",
    )


def escalation_out(e: Any, holder: str | None) -> EscalationOut:
    """The API's view of an escalation; `holder` is whoever's claim still holds."""
    fields = {k: v for k, v in vars(e).items() if k in EscalationOut.model_fields}
    if holder is None:  # unclaimed, or the claim lapsed
        fields.update(claimed_by=None, claimed_at=None)
    return EscalationOut(**fields)


@router.get("/escalations", response_model=EscalationList)
async def list_escalations(
    partner: AgentPartner,
    engine: EngineDep,
    status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> EscalationList:
    """Escalated questions of this partner, newest first, with the evidence the graph had."""
    items = await engine.escalations.list(partner.name, status, limit, offset)
    return EscalationList(escalations=[escalation_out(e, engine.claim_holder(e)) for e in items])


@router.post(
    "/escalations/{escalation_id}/reply",
    response_model=EscalationOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def reply(
    escalation_id: EscalationId,
    body: ReplyIn,
    request: Request,
    partner: AgentPartner,
    engine: EngineDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> Any:
    """Answer an escalation: the answer becomes the assistant message of that turn. With an
    `Idempotency-Key`, a repeat returns the first reply's result and answers nothing twice."""

    async def act() -> EscalationOut:
        escalation = await engine.resume(
            partner.name, escalation_id, body.answer, body.agent_id, keep=body.next == "expert"
        )
        return escalation_out(escalation, None)

    return await idempotency.once(request, engine.runs.store, partner.name, body, act)


@router.post(
    "/escalations/{escalation_id}/claim",
    response_model=EscalationOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def claim(
    escalation_id: EscalationId, body: AgentIn, partner: AgentPartner, engine: EngineDep
) -> EscalationOut:
    """Take an open escalation: until released, or idle for the claim timeout, no other agent
    can claim (409 `escalation_claimed`) or answer it. Claiming again renews the claim."""
    escalation = await engine.claim(partner.name, escalation_id, body.agent_id)
    return escalation_out(escalation, engine.claim_holder(escalation))


@router.post(
    "/escalations/{escalation_id}/release",
    response_model=EscalationOut,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def release(
    escalation_id: EscalationId, body: AgentIn, partner: AgentPartner, engine: EngineDep
) -> EscalationOut:
    """Give a claimed escalation back to the queue (its claimer only)."""
    escalation = await engine.release(partner.name, escalation_id, body.agent_id)
    return escalation_out(escalation, engine.claim_holder(escalation))


@router.post(
    "/webhooks",
    response_model=WebhookOut,
    status_code=201,
    responses={409: {"model": ErrorBody, "description": "`too_many_webhooks`"}},
)
async def create_webhook(body: WebhookIn, partner: ChatPartner, engine: EngineDep) -> WebhookOut:
    """Register an endpoint; the response carries its signing secret (shown once). A partner
    has at most ALIM_WEBHOOK_MAX_ENDPOINTS endpoints (default 10): one more is 409
    `too_many_webhooks`."""
    return WebhookOut.model_validate(
        await engine.webhooks.register(partner.name, body.url, list(body.events))
    )


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(partner: ChatPartner, engine: EngineDep) -> list[WebhookOut]:
    return [WebhookOut.model_validate(w) for w in await engine.webhooks.list(partner.name)]


@router.get(
    "/webhooks/{webhook_id}", response_model=WebhookOut, responses={404: {"model": ErrorBody}}
)
async def get_webhook(webhook_id: WebhookId, partner: ChatPartner, engine: EngineDep) -> WebhookOut:
    """The endpoint and its circuit breaker (`state`, `consecutive_failures`,
    `disabled_until`)."""
    return WebhookOut.model_validate(await engine.webhooks.get(partner.name, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_webhook(
    webhook_id: WebhookId, partner: ChatPartner, engine: EngineDep
) -> Response:
    await engine.webhooks.delete(partner.name, webhook_id)
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", responses={404: {"model": ErrorBody}})
async def webhook_deliveries(
    webhook_id: WebhookId, partner: ChatPartner, engine: EngineDep
) -> list[Delivery]:
    """The delivery log: every event, its attempts, last status and error."""
    return await engine.webhooks.deliveries(partner.name, webhook_id)
