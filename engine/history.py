"""A thread's checkpointed messages as the API and the CLI show them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from langchain_core.messages import BaseMessage

from graphs.messages import text_of


class HistoryMessage(TypedDict, total=False):
    role: Literal["user", "assistant"]
    content: str
    created_at: str | None
    sources: list[dict[str, Any]]
    """Assistant messages only: what the answer cites."""
    from_human: bool
    """Assistant messages only: an agronomist wrote it."""
    aborted: str
    """Assistant messages only, when the turn ended without an answer: why (`run_lost`,
    `cancelled`, an error code); the content is empty."""


def render(messages: Sequence[BaseMessage]) -> list[HistoryMessage]:
    """User and assistant messages, oldest first; tool and system messages are not shown."""
    out: list[HistoryMessage] = []
    for m in messages:
        if m.type == "human":
            out.append(
                {
                    "role": "user",
                    "content": text_of(m),
                    "created_at": m.additional_kwargs.get("created_at"),
                }
            )
        elif m.type == "ai":
            meta = m.response_metadata or {}
            entry: HistoryMessage = {
                "role": "assistant",
                "content": text_of(m),
                "created_at": meta.get("created_at"),
                "sources": meta.get("sources") or [],
                "from_human": bool(meta.get("from_human")),
            }
            if meta.get("aborted"):
                entry["aborted"] = str(meta["aborted"])
            out.append(entry)
    return out
