"""Analytics per partner key and end-user feedback."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from alim.errors import InvalidRequest
from alim.threads import Owner
from api import idempotency
from api.deps import ChatCaller, ChatPartner, EngineDep
from api.schemas import THREAD_ID_PATTERN, USER_ID_PATTERN, ErrorBody

router = APIRouter(tags=["analytics"])
MAX_RANGE_DAYS = 366
METRIC_ALIASES = {"conversations": "total_conversations"}  # seed 002's name


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str = Field(pattern=USER_ID_PATTERN)
    run_id: str = Field(min_length=1, max_length=64, description="The run being rated.")
    score: int = Field(ge=1, le=5, description="1 (bad) … 5 (excellent).")
    comment: str | None = Field(None, max_length=2000)


@router.get("/analytics", responses={422: {"model": ErrorBody}})
async def analytics(
    partner: ChatPartner,
    engine: EngineDep,
    start_date: Annotated[date, Query(description="ISO 8601 date, inclusive.")],
    end_date: Annotated[date, Query(description="ISO 8601 date, inclusive.")],
    metrics: Annotated[str | None, Query(description="Comma-separated subset of metrics.")] = None,
    group_by: Annotated[Literal["day", "week", "month"], Query()] = "day",
) -> dict[str, Any]:
    """Conversations, messages, resolution and escalation, response times, satisfaction."""
    if end_date < start_date:
        raise InvalidRequest("end_date is before start_date", code="invalid_date_range")
    if (end_date - start_date).days > MAX_RANGE_DAYS:
        raise InvalidRequest(f"at most {MAX_RANGE_DAYS} days", code="invalid_date_range")
    report = await engine.analytics.report(partner.name, start_date, end_date, group_by)
    if metrics:
        wanted = {METRIC_ALIASES.get(m.strip(), m.strip()) for m in metrics.split(",") if m.strip()}
        unknown = wanted - set(report["metrics"])
        if unknown:
            raise InvalidRequest(f"unknown metrics: {sorted(unknown)}", code="invalid_metrics")
        report["metrics"] = {k: v for k, v in report["metrics"].items() if k in wanted}
        report["breakdown"] = [
            {k: v for k, v in row.items() if k == "period" or k in wanted}
            for row in report["breakdown"]
        ]
    return report


@router.get("/analytics/handoff", responses={422: {"model": ErrorBody}})
async def handoff_analytics(
    partner: ChatPartner,
    engine: EngineDep,
    start_date: Annotated[date, Query(description="ISO 8601 date, inclusive.")],
    end_date: Annotated[date, Query(description="ISO 8601 date, inclusive.")],
) -> dict[str, Any]:
    """Escalations created in the range: how many are open, answered, closed, and how long they
    waited to be claimed and answered (seconds, p50/p90), for the partner and per agent."""
    if end_date < start_date:
        raise InvalidRequest("end_date is before start_date", code="invalid_date_range")
    if (end_date - start_date).days > MAX_RANGE_DAYS:
        raise InvalidRequest(f"at most {MAX_RANGE_DAYS} days", code="invalid_date_range")
    return await engine.handoff_times(partner.name, start_date, end_date)


@router.post(
    "/threads/{thread_id}/feedback", status_code=201, responses={404: {"model": ErrorBody}}
)
async def feedback(
    thread_id: Annotated[str, Path(pattern=THREAD_ID_PATTERN)],
    body: FeedbackIn,
    request: Request,
    caller: ChatCaller,
    engine: EngineDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> Any:
    """Rate one answer of a thread (owner only). With an `Idempotency-Key`, a repeat returns
    the first rating and records nothing twice."""
    body, partner = caller.bind(body), caller.partner

    async def act() -> dict[str, Any]:
        record = await engine.feedback(
            Owner(partner.name, body.user_id), thread_id, body.run_id, body.score, body.comment
        )
        return {
            "id": record["id"],
            "run_id": body.run_id,
            "score": body.score,
            "created_at": record["created_at"],
        }

    return await idempotency.once(
        request,
        engine.runs.store,
        partner.name,
        {"thread_id": thread_id, **body.model_dump()},
        act,
        201,
    )
