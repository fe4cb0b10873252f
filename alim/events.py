"""Typed events of one turn, shared by the engine, the SSE encoder and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetadataEvent:
    """First event: where the turn lives (a new thread's id reaches the client here)."""

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


Event = MetadataEvent | NodeEvent | TokenEvent | SourcesEvent | ErrorEvent | DoneEvent


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
