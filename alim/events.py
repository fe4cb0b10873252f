"""Typed events of one turn, shared by the engine, the SSE encoder and the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetadataEvent:
    """First event: where the turn lives (a new thread's id reaches the client here)."""

    thread_id: str
    run_id: str


@dataclass(frozen=True)
class QueuedEvent:
    """First event of a run sent with `multitask_strategy: "enqueue"` while its thread is busy:
    it waits for the thread's current run (`metadata` follows once it starts)."""

    thread_id: str
    run_id: str


@dataclass(frozen=True)
class NodeEvent:
    """A graph node started."""

    name: str


@dataclass(frozen=True)
class TokenEvent:
    """A chunk of the user-visible answer."""

    text: str


@dataclass(frozen=True)
class SourcesEvent:
    """After the answer: what it rests on and how the turn went."""

    sources: list[dict[str, Any]]
    confidence: float | None
    escalated: bool
    escalation_reason: str | None
    route: str | None
    model: str | None
    usage: dict[str, int] | None = None
    escalation_id: str | None = None
    """Set when the turn waits for an agronomist."""


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    detail: str


@dataclass(frozen=True)
class DoneEvent:
    """Always the last event, also after an error."""


Event = MetadataEvent | QueuedEvent | NodeEvent | TokenEvent | SourcesEvent | ErrorEvent | DoneEvent

DONE_DATA = "[DONE]"


def wire(event: Event) -> tuple[str, str]:
    """The SSE event name and data of an engine event, as sent and as logged for replay."""
    if isinstance(event, TokenEvent):
        return "token", event.text
    if isinstance(event, NodeEvent):
        return "node", event.name
    if isinstance(event, MetadataEvent):
        return "metadata", json.dumps(asdict(event))
    if isinstance(event, QueuedEvent):
        return "queued", json.dumps(asdict(event))
    if isinstance(event, SourcesEvent):
        return "sources", json.dumps(asdict(event), ensure_ascii=False)
    if isinstance(event, ErrorEvent):
        return "error", json.dumps(asdict(event), ensure_ascii=False)
    if isinstance(event, DoneEvent):
        return "done", DONE_DATA
    raise TypeError(f"not an engine event: {event!r}")


@dataclass
class TurnResult:
    """The whole turn, as the invoke endpoint and `alim run --json` return it."""

    response: str
    thread_id: str
    model: str
    run_id: str
    route: str | None
    confidence: float | None
    escalated: bool
    escalation_reason: str | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None
    escalation_id: str | None = None

    @classmethod
    def of(cls, thread_id: str, run_id: str, text: str, summary: SourcesEvent) -> TurnResult:
        """A completed turn from its answer text and its `sources` event."""
        return cls(
            response=text,
            thread_id=thread_id,
            model=summary.model or "",
            run_id=run_id,
            route=summary.route,
            confidence=summary.confidence,
            escalated=summary.escalated,
            escalation_reason=summary.escalation_reason,
            sources=summary.sources,
            usage=summary.usage,
            escalation_id=summary.escalation_id,
        )
