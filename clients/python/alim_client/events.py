"""Typed events of one turn and the whole-turn result: the wire vocabulary of the ALİM API.

The server builds these (its engine, SSE encoder and CLI import them through `alim.events`) and
the client parses them back, so both sides share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
