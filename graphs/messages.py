"""Helpers to read the conversation in the state, and the answer's pieces as they stream."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from langchain_core.messages import AnyMessage, BaseMessage, HumanMessage


def text_of(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return " ".join(
        part.get("text", "") if isinstance(part, dict) else str(part) for part in content
    )


def last_user_text(messages: Sequence[AnyMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            return text_of(message).strip()
    return ""


@dataclass(frozen=True, slots=True)
class AnswerPiece:
    """A piece of the answer as the model streams it, written by `generate` to LangGraph's
    `custom` stream mode: the turn's `token` events come from these (engine.turn)."""

    text: str
