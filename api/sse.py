"""Engine events → SSE events: a pure translation, unit-tested without HTTP.

Event order: `metadata` (thread_id, run_id) → `node` (each node as it starts) → `token` (answer
chunks; sse-starlette splits a chunk with newlines into several `data:` lines, so a spec parser
gets the text back exactly) → `sources` → `error` (on failure) → `done` (`[DONE]`, always last).
"""

from __future__ import annotations

import json
from dataclasses import asdict

from sse_starlette import ServerSentEvent

from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
)


def to_sse(event: Event) -> ServerSentEvent:
    if isinstance(event, TokenEvent):
        return ServerSentEvent(data=event.text, event="token")
    if isinstance(event, NodeEvent):
        return ServerSentEvent(data=event.name, event="node")
    if isinstance(event, MetadataEvent):
        return ServerSentEvent(data=json.dumps(asdict(event)), event="metadata")
    if isinstance(event, SourcesEvent):
        return ServerSentEvent(data=json.dumps(asdict(event), ensure_ascii=False), event="sources")
    if isinstance(event, ErrorEvent):
        return ServerSentEvent(data=json.dumps(asdict(event), ensure_ascii=False), event="error")
    if isinstance(event, DoneEvent):
        return ServerSentEvent(data="[DONE]", event="done")
    raise TypeError(f"not an engine event: {event!r}")
