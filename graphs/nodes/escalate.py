"""`escalate`: hand the turn to a human agronomist with a short message in the user's language."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.runtime import Runtime

from graphs.context import Context
from graphs.messages import now_iso
from graphs.state import State

HANDOFF_MODEL = "alim-handoff"
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
    text = handoff_message(reason, state.get("language") or "az")
    message = AIMessage(
        content=text,
        response_metadata={"model_name": HANDOFF_MODEL, "created_at": now_iso(), "sources": []},
    )
    return {
        "messages": [message],
        "escalated": True,
        "escalation_reason": reason,
        "model": HANDOFF_MODEL,
    }
