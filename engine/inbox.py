"""What the agronomists' inbox reads: one escalation with its whole conversation, the passages
ALİM retrieved and a draft answer; and the stream of changes to a partner's escalations.

The draft is ALİM's offline composition over the evidence the turn had (the sentences that
answer, cited), without the offline-mode line: a starting point the expert edits, never sent as
is. The change stream polls the escalation table (`updated_at`, stamped by every change), so it
works across replicas and resumes from an event id (`<updated_at>|<escalation id>`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from alim.errors import InvalidRequest, NotFound
from alim.handoff import Escalation
from alim.i18n import text
from alim.offline import Grounding, compose
from alim.text import detect_language
from alim.timeutil import iso, now_iso
from engine.history import HistoryMessage, render

if TYPE_CHECKING:
    from engine.service import Engine
    from graphs.deps import GraphDeps

POLL_SECONDS = 1.0
"""How often the change stream looks for changes (new escalations show within this)."""
LATE_COMMIT = timedelta(seconds=5)
"""A change stamped this long before the newest one seen may still commit: looked for again."""
PASSAGE_CHARS = 600


@dataclass
class Passage:
    title: str
    score: float
    text: str
    article_id: str = ""


@dataclass
class Detail:
    escalation: Escalation
    messages: list[HistoryMessage]
    passages: list[Passage] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    draft: str = ""


async def detail(engine: Engine, partner: str, escalation_id: str) -> Detail:
    escalation = await engine.escalations.get(partner, escalation_id)
    if escalation is None:
        raise NotFound("escalation not found", code="escalation_not_found")
    state = await engine.graph.aget_state({"configurable": {"thread_id": escalation.thread_key}})
    values: dict[str, Any] = state.values if state and state.values else {}
    evidence = list(values.get("evidence") or [])
    if not evidence and escalation.status == "open" and engine.deps is not None:
        # A hand-off on request skips retrieval: search now, for the passages and the draft.
        scope = await engine.knowledge.scope(partner, None) if engine.knowledge else None
        evidence = await asyncio.to_thread(search, engine.deps, escalation, scope)
    passages = [
        Passage(
            title=str(e.get("title", "")),
            score=round(float(e.get("score") or 0.0), 4),
            text=str(e.get("text", ""))[:PASSAGE_CHARS],
            article_id=str(e.get("article_id", "")),
        )
        for e in evidence
    ]
    if not passages:  # the escalation's own record of what was retrieved
        passages = [
            Passage(title=str(s.get("title", "")), score=float(s.get("score") or 0.0), text="")
            for s in escalation.sources
        ]
    return Detail(
        escalation=escalation,
        messages=render(values.get("messages", [])),
        passages=passages,
        profile=dict(values.get("profile") or {}),
        draft=draft(escalation, evidence, values.get("profile")),
    )


def search(
    deps: GraphDeps, escalation: Escalation, scope: Sequence[str] | None = None
) -> list[Any]:
    """The evidence for the escalated question, as the `retrieve` node would gather it from
    the partner's datasets and the bundled base (`scope`)."""
    from alim.knowledge.index import SearchOptions
    from alim.understanding import understand
    from graphs.evidence import evidence_for

    question = escalation.question
    language = escalation.language or detect_language(question)
    _, evidence = evidence_for(
        deps.index(scope), question, understand(question), language, SearchOptions()
    )
    return list(evidence)


def draft(escalation: Escalation, evidence: list[Any], profile: Any) -> str:
    """ALİM's answer from the evidence it had, as the expert's starting point ('' with none)."""
    if not evidence or escalation.status != "open":
        return ""
    language = escalation.language or detect_language(escalation.question)
    grounding = Grounding(
        question=escalation.question,
        language=language,
        passages=[dict(e) for e in evidence],
        profile=dict(profile or {}) or None,
    )
    offline_line = text("offline", language)
    blocks = [b for b in compose(grounding).split("\n\n") if b.strip() != offline_line]
    return "\n\n".join(blocks).strip()


def cursor_of(event_id: str | None) -> tuple[str, str] | None:
    """`<updated_at>|<escalation id>` → its parts (None for no id); 422 when malformed."""
    if not event_id:
        return None
    stamp, sep, escalation_id = event_id.partition("|")
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        sep = ""
    if not sep or not escalation_id.startswith("esc_"):
        raise InvalidRequest("Last-Event-ID is not an inbox event id", code="invalid_last_event_id")
    return stamp, escalation_id


def event_id(escalation: Escalation) -> str:
    return f"{escalation.updated_at}|{escalation.id}"


async def changes(
    engine: Engine,
    partner: str,
    after: str | None,
    stopping: Callable[[], bool],
    poll: float = POLL_SECONDS,
) -> AsyncGenerator[Escalation]:
    """Every change to the partner's escalations after the event id `after` (from now when
    None), as the escalation's new state, oldest change first; ends when `stopping()`."""
    start = cursor_of(after)
    newest = start[0] if start else now_iso()
    sent: dict[tuple[str, str], str] = {}  # (updated_at, id) → updated_at, for de-duplication
    if start:
        sent[(start[0], start[1])] = start[0]
        # Changes at the very same instant as the last one seen, ordered by id, came before it.
        for e in await engine.escalations.changed_since(partner, start[0]):
            if e.updated_at == start[0] and e.id <= start[1]:
                sent[(e.updated_at, e.id)] = e.updated_at
    while not stopping():
        since = iso(datetime.fromisoformat(newest) - LATE_COMMIT)
        for e in await engine.escalations.changed_since(partner, since):
            key = (e.updated_at, e.id)
            if key in sent or (start and e.updated_at < start[0]):
                continue
            sent[key] = e.updated_at
            newest = max(newest, e.updated_at)
            yield e
        for key, stamp in list(sent.items()):
            if stamp < since:
                del sent[key]
        await asyncio.sleep(poll)
