"""Typed events of one turn, shared by the engine, the SSE encoder and the CLI.

The event and result types are defined once, in the client package (`alim_client.events`), so
what the server sends and what the clients parse cannot drift; this module adds how the server
writes them on the wire.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from alim_client.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    QueuedEvent,
    SourcesEvent,
    TokenEvent,
    TurnResult,
)

__all__ = [
    "DONE_DATA",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "MetadataEvent",
    "NodeEvent",
    "QueuedEvent",
    "SourcesEvent",
    "TokenEvent",
    "TurnResult",
    "members",
    "wire",
]

DONE_DATA = "[DONE]"


def members(value: Event | TurnResult) -> dict[str, Any]:
    """An event's or a result's fields in order, values as they are (`dataclasses.asdict`
    would deep-copy every source just before `json.dumps` or the run store reads it)."""
    return {f.name: getattr(value, f.name) for f in fields(value)}


def wire(event: Event) -> tuple[str, str]:
    """The SSE event name and data of an engine event, as sent and as logged for replay."""
    if isinstance(event, TokenEvent):
        return "token", event.text
    if isinstance(event, NodeEvent):
        return "node", event.name
    if isinstance(event, MetadataEvent):
        return "metadata", json.dumps(members(event))
    if isinstance(event, QueuedEvent):
        return "queued", json.dumps(members(event))
    if isinstance(event, SourcesEvent):
        return "sources", json.dumps(members(event), ensure_ascii=False)
    if isinstance(event, ErrorEvent):
        return "error", json.dumps(members(event), ensure_ascii=False)
    if isinstance(event, DoneEvent):
        return "done", DONE_DATA
    raise TypeError(f"not an engine event: {event!r}")
