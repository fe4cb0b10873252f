"""`escalate` and `await_human`: hand the turn to a human agronomist.

`escalate` records why (`low_confidence` | `user_requested`), the evidence, and a short hand-off
message in the user's language. `await_human` pauses the graph with `interrupt()`; the agent's
reply (`Command(resume={"answer", "agent_id"})`) becomes the assistant message of the turn,
marked as from a human expert.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from alim.i18n import text
from alim.timeutil import now_iso
from graphs.context import Context, context_of
from graphs.evidence import sources_of
from graphs.messages import last_user_text
from graphs.state import State

HANDOFF_MODEL = "alim-handoff"
HUMAN_MODEL = "human-agronomist"


def handoff_message(reason: str, language: str) -> str:
    key = "handoff_user_requested" if reason == "user_requested" else "handoff_low_confidence"
    return text(key, language)


async def escalate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    reason = state.get("escalation_reason") or "low_confidence"
    language = state.get("language") or "az"
    text = handoff_message(reason, language)
    update: dict[str, Any] = {
        "escalated": True,
        "escalation_reason": reason,
        "handoff": text,
        "model": HANDOFF_MODEL,
        "sources": sources_of(state.get("evidence") or []),
    }
    if not context_of(runtime).human_handoff:
        update["messages"] = [
            AIMessage(
                content=text,
                response_metadata={
                    "model_name": HANDOFF_MODEL,
                    "created_at": now_iso(),
                    "sources": [],
                },
            )
        ]
    return update


async def await_human(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    reply = interrupt(
        {
            "question": last_user_text(state["messages"]),
            "reason": state.get("escalation_reason"),
            "confidence": state.get("confidence"),
            "sources": state.get("sources") or [],
        }
    )
    message = AIMessage(
        content=str(reply["answer"]),
        response_metadata={
            "model_name": HUMAN_MODEL,
            "from_human": True,
            "agent_id": reply.get("agent_id"),
            "created_at": now_iso(),
            "sources": [],
        },
    )
    return {"messages": [message], "model": HUMAN_MODEL}
