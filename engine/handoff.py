"""An agronomist answers an escalation: the paused graph resumes with the answer; or closes it
without one (duplicate, spam, not farming): the graph ends the turn with a polite notice in the
farmer's language, written as if `await_human` had run.

Idempotent against the graph: the graph step commits the answer before the bookkeeping does, so
a reply whose bookkeeping failed (the process died, the database refused) leaves a graph with no
pending interrupt and an escalation still open. A retried reply then does only the bookkeeping,
with the answer the farmer already has; it never resumes the graph twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage
from langgraph.types import Command

from alim.errors import Conflict, InvalidRequest, NotFound
from alim.handoff import KEPT_BY_EXPERT, CloseReason, Escalation
from alim.i18n import text
from alim.text import detect_language
from alim.timeutil import iso, now_iso
from graphs.nodes.escalate import HANDOFF_MODEL

if TYPE_CHECKING:
    from engine.service import Engine


async def resume(
    engine: Engine,
    partner: str,
    escalation_id: str,
    answer: str,
    agent_id: str,
    keep: bool = False,
) -> Escalation:
    """Answer; with `keep`, the farmer's next messages stay with this expert (a new escalation,
    claimed by them, waits) instead of going back to ALİM."""
    answer = answer.strip()
    if not answer:
        raise InvalidRequest("answer is empty", code="answer_empty")
    if "\x00" in answer or "\x00" in agent_id:
        raise InvalidRequest("the answer contains a NUL character", code="invalid_characters")
    escalation = await _held_by(engine, partner, escalation_id, agent_id)
    config = {"configurable": {"thread_id": escalation.thread_key}}
    async with engine.threads.lock(escalation.thread_key):
        state = await engine.graph.aget_state(config)
        if "await_human" in (state.next or ()):
            await engine.graph.ainvoke(
                Command(resume={"answer": answer, "agent_id": agent_id}), config
            )
            state = await engine.graph.aget_state(config)
        else:
            answer, agent_id = _given_answer(state, answer, agent_id)
        async with engine.persistence.db.transaction():
            await engine.escalations.resolve(escalation_id, answer, agent_id)
            await _hand_back(engine, partner, escalation, state, "conversation.resolved", agent_id)
        if keep:
            await _keep_with_expert(engine, escalation, agent_id, config)
    return await _reloaded(engine, partner, escalation_id)


async def _held_by(engine: Engine, partner: str, escalation_id: str, agent_id: str) -> Escalation:
    """The open escalation, which no other agent's claim holds (409 `escalation_claimed`)."""
    escalation = await _open_escalation(engine, partner, escalation_id)
    holder = escalation.holder(stale_before(engine))
    if holder is not None and holder != agent_id:
        raise _claimed(holder)
    return escalation


async def _hand_back(
    engine: Engine,
    partner: str,
    escalation: Escalation,
    state: Any,
    event: str,
    agent_id: str,
    **extra: str,
) -> None:
    """In the caller's transaction: the thread takes bot questions again, its message count is
    the graph's, and partners hear of it (`event`, ids only plus `extra`)."""
    await engine.threads.set_status(escalation.thread_key, "active")
    await engine.threads.record_messages(
        escalation.thread_key, len(state.values.get("messages", []))
    )
    await engine.outbox.emit(
        partner,
        event,
        {
            "conversation_id": escalation.thread_id,
            "user_id": escalation.user_id,
            "escalation_id": escalation.id,
            "assigned_agent": agent_id,
            **extra,
        },
    )


async def _reloaded(engine: Engine, partner: str, escalation_id: str) -> Escalation:
    """The escalation as stored after a change (404 if its thread was deleted meanwhile)."""
    found = await engine.escalations.get(partner, escalation_id)
    if found is None:
        raise NotFound("escalation not found", code="escalation_not_found")
    return found


def _given_answer(state: Any, answer: str, agent_id: str) -> tuple[str, str]:
    """The expert's answer the graph already holds (from a reply whose bookkeeping failed)."""
    for message in reversed(state.values.get("messages", [])):
        meta = getattr(message, "response_metadata", {}) or {}
        if meta.get("from_human"):
            return str(message.content), str(meta.get("agent_id") or agent_id)
    return answer, agent_id


def stale_before(engine: Engine) -> str:
    """Claims made before this time have lapsed (`ALIM_CLAIM_TIMEOUT`)."""
    return iso(datetime.now(UTC) - timedelta(seconds=engine.settings.claim_timeout))


def _check_open(escalation: Escalation) -> None:
    if escalation.status == "cancelled":
        raise Conflict(
            "this escalation was cancelled (its conversation was deleted); there is no one to "
            "answer",
            code="escalation_cancelled",
        )
    if escalation.status != "open":
        raise Conflict("this escalation is already resolved", code="escalation_resolved")


def _claimed(holder: str) -> Conflict:
    return Conflict(
        f"this escalation is claimed by another agent ({holder})", code="escalation_claimed"
    )


async def _open_escalation(engine: Engine, partner: str, escalation_id: str) -> Escalation:
    escalation = await engine.escalations.get(partner, escalation_id)
    if escalation is None:
        raise NotFound("escalation not found", code="escalation_not_found")
    _check_open(escalation)
    return escalation


async def claim(engine: Engine, partner: str, escalation_id: str, agent_id: str) -> Escalation:
    """Take the escalation (or renew this agent's claim); 409 `escalation_claimed` while another
    agent's claim holds. `conversation.claimed` goes out when it changes hands, not on renewal."""
    before = await _open_escalation(engine, partner, escalation_id)
    async with engine.persistence.db.transaction():
        if not await engine.escalations.claim(
            partner, escalation_id, agent_id, stale_before(engine)
        ):
            current = await _open_escalation(engine, partner, escalation_id)
            raise _claimed(current.holder(stale_before(engine)) or "unknown")
        if before.holder(stale_before(engine)) != agent_id:
            await engine.outbox.emit(
                partner,
                "conversation.claimed",
                {
                    "conversation_id": before.thread_id,
                    "user_id": before.user_id,
                    "escalation_id": escalation_id,
                    "assigned_agent": agent_id,
                },
            )
    return await _open_escalation(engine, partner, escalation_id)


async def release(engine: Engine, partner: str, escalation_id: str, agent_id: str) -> Escalation:
    """Give the escalation back to the queue; only its claimer can (an unclaimed or lapsed one
    is released already)."""
    escalation = await _open_escalation(engine, partner, escalation_id)
    holder = escalation.holder(stale_before(engine))
    if holder is not None and holder != agent_id:
        raise _claimed(holder)
    if escalation.claimed_by is not None:
        await engine.escalations.release(escalation_id)
    return await _open_escalation(engine, partner, escalation_id)


async def _keep_with_expert(
    engine: Engine, answered: Escalation, agent_id: str, config: dict[str, Any]
) -> None:
    """The thread waits for the same expert again: the graph is set just after `escalate` (so
    the farmer's next messages are kept for the expert, as while any escalation waits) and a
    new escalation, claimed by the agent, takes them."""
    await engine.graph.aupdate_state(config, {"handoff": None}, as_node="escalate")
    async with engine.persistence.db.transaction():
        kept = await engine.escalations.open(
            partner=answered.partner,
            user_id=answered.user_id,
            thread_id=answered.thread_id,
            thread_key=answered.thread_key,
            run_id=answered.run_id,
            question=answered.question,
            reason=KEPT_BY_EXPERT,
            confidence=answered.confidence,
            sources=answered.sources,
            language=answered.language,
            route=answered.route,
            region=answered.region,
            crops=answered.crops,
        )
        await engine.escalations.claim(answered.partner, kept.id, agent_id, stale_before(engine))
        await engine.threads.set_status(answered.thread_key, "awaiting_human")
        await engine.outbox.emit(
            answered.partner,
            "conversation.escalated",
            {
                "conversation_id": answered.thread_id,
                "user_id": answered.user_id,
                "escalation_id": kept.id,
                "reason": KEPT_BY_EXPERT,
                "assigned_agent": agent_id,
            },
        )


def closing_notice(reason: CloseReason, language: str) -> str:
    """What the farmer reads when an expert closes the question without an answer."""
    return text(f"closed_{reason}", language)


async def close(
    engine: Engine, partner: str, escalation_id: str, agent_id: str, reason: CloseReason
) -> Escalation:
    """Close without an answer: the farmer gets a polite notice in their language, the thread
    takes new questions again, `conversation.closed` goes out (ids and the reason code)."""
    escalation = await _held_by(engine, partner, escalation_id, agent_id)
    config = {"configurable": {"thread_id": escalation.thread_key}}
    async with engine.threads.lock(escalation.thread_key):
        state = await engine.graph.aget_state(config)
        if "await_human" in (state.next or ()):
            language = escalation.language or detect_language(escalation.question)
            notice = AIMessage(
                content=closing_notice(reason, language),
                response_metadata={
                    "model_name": HANDOFF_MODEL,
                    "created_at": now_iso(),
                    "sources": [],
                    "closed": reason,
                },
            )
            await engine.graph.aupdate_state(
                config, {"messages": [notice], "model": HANDOFF_MODEL}, as_node="await_human"
            )
            state = await engine.graph.aget_state(config)
        async with engine.persistence.db.transaction():
            await engine.escalations.close(escalation_id, reason, agent_id)
            await _hand_back(
                engine, partner, escalation, state, "conversation.closed", agent_id, reason=reason
            )
    return await _reloaded(engine, partner, escalation_id)
