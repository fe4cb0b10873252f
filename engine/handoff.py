"""An agronomist answers an escalation: the paused graph resumes with the answer.

Idempotent against the graph: the graph step commits the answer before the bookkeeping does, so
a reply whose bookkeeping failed (the process died, the database refused) leaves a graph with no
pending interrupt and an escalation still open. A retried reply then does only the bookkeeping,
with the answer the farmer already has; it never resumes the graph twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from alim.errors import Conflict, InvalidRequest, NotFound
from alim.handoff import Escalation

if TYPE_CHECKING:
    from engine.service import Engine


async def resume(
    engine: Engine, partner: str, escalation_id: str, answer: str, agent_id: str
) -> Escalation:
    answer = answer.strip()
    if not answer:
        raise InvalidRequest("answer is empty", code="answer_empty")
    if "\x00" in answer or "\x00" in agent_id:
        raise InvalidRequest("the answer contains a NUL character", code="invalid_characters")
    escalation = await engine.escalations.get(partner, escalation_id)
    if escalation is None:
        raise NotFound("escalation not found", code="escalation_not_found")
    if escalation.status == "cancelled":
        raise Conflict(
            "this escalation was cancelled (its conversation was deleted); there is no one to "
            "answer",
            code="escalation_cancelled",
        )
    if escalation.status != "open":
        raise Conflict("this escalation is already resolved", code="escalation_resolved")
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
            await engine.threads.set_status(escalation.thread_key, "active")
            await engine.threads.record_messages(
                escalation.thread_key, len(state.values.get("messages", []))
            )
            await engine.outbox.emit(
                partner,
                "conversation.resolved",
                {
                    "conversation_id": escalation.thread_id,
                    "user_id": escalation.user_id,
                    "escalation_id": escalation_id,
                    "assigned_agent": agent_id,
                },
            )
    resolved = await engine.escalations.get(partner, escalation_id)
    if resolved is None:  # deleted between the reply and now
        raise NotFound("escalation not found", code="escalation_not_found")
    return resolved


def _given_answer(state: Any, answer: str, agent_id: str) -> tuple[str, str]:
    """The expert's answer the graph already holds (from a reply whose bookkeeping failed)."""
    for message in reversed(state.values.get("messages", [])):
        meta = getattr(message, "response_metadata", {}) or {}
        if meta.get("from_human"):
            return str(message.content), str(meta.get("agent_id") or agent_id)
    return answer, agent_id
