"""An agronomist answers an escalation: the paused graph resumes with the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
    escalation = await engine.escalations.get(partner, escalation_id)
    if escalation is None:
        raise NotFound("escalation not found", code="escalation_not_found")
    if escalation.status != "open":
        raise Conflict("this escalation is already resolved", code="escalation_resolved")
    config = {"configurable": {"thread_id": escalation.thread_key}}
    async with engine.threads.lock(escalation.thread_key):
        await engine.graph.ainvoke(Command(resume={"answer": answer, "agent_id": agent_id}), config)
        state = await engine.graph.aget_state(config)
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
