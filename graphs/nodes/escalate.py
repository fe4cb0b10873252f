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

from alim.timeutil import now_iso
from graphs.context import Context, context_of
from graphs.evidence import select_passages, sources_of
from graphs.messages import last_user_text
from graphs.state import State

HANDOFF_MODEL = "alim-handoff"
HUMAN_MODEL = "human-agronomist"
_MESSAGES = {
    "user_requested": {
        "az": "Sorğunuzu aqronomumuza yönləndirdim. Mütəxəssis tezliklə bu söhbətdə cavab verəcək.",
        "en": "I have passed your request to our agronomist. An expert will reply in this "
        "conversation soon.",
        "ru": "Я передал ваш запрос нашему агроному. Специалист скоро ответит в этом чате.",
    },
    "low_confidence": {
        "az": "Bu sual üçün bilik bazamızda kifayət qədər etibarlı məlumat tapmadım, ona görə "
        "onu aqronoma yönləndirdim. Mütəxəssisin cavabı bu söhbətdə görünəcək.",
        "en": "I could not find reliable enough information on this in our knowledge base, so I "
        "have passed your question to an agronomist. The expert's answer will appear in this "
        "conversation.",
        "ru": "В нашей базе знаний недостаточно надёжной информации по этому вопросу, поэтому "
        "я передал его агроному. Ответ специалиста появится в этом чате.",
    },
}


def handoff_message(reason: str, language: str) -> str:
    table = _MESSAGES.get(reason, _MESSAGES["low_confidence"])
    return table.get(language, table["en"])


async def escalate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    reason = state.get("escalation_reason") or "low_confidence"
    language = state.get("language") or "az"
    text = handoff_message(reason, language)
    update: dict[str, Any] = {
        "escalated": True,
        "escalation_reason": reason,
        "handoff": text,
        "model": HANDOFF_MODEL,
        "sources": sources_of(select_passages(state.get("chunks") or [], language)),
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
