"""The engine: every entry point (HTTP API, CLI, evaluation) runs turns through it.

engine = Engine(graph, persistence, settings)
turn = await engine.begin(request)      # validates, locks the thread (ThreadBusy → 409)
async for event in turn.events(): ...   # metadata, node…, token…, sources; raises AlimError
result = await engine.invoke(request)   # the same iterator, folded into a TurnResult
run = await engine.runs.launch(turn)    # or: run it detached, durably logged (HTTP API)
async for batch in engine.runs.follow_batches(run.run_id, after=seq): ...
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from alim import handoff_stats
from alim.analytics import Analytics, Feedback
from alim.assistants import AssistantStore
from alim.errors import AwaitingHuman, NotFound
from alim.events import Event, SourcesEvent, TokenEvent, TurnResult
from alim.handoff import CloseReason, Escalation, EscalationStore
from alim.knowledge.datasets import PartnerKnowledge
from alim.knowledge.store import KnowledgeStore
from alim.metrics import Metrics
from alim.netguard import networks
from alim.persistence import Persistence, open_persistence
from alim.runs import RunStore
from alim.settings import Settings
from alim.threads import Owner, ThreadInfo, thread_key
from alim.webhooks import Outbox, WebhookStore
from engine import handoff, inbox
from engine.bookkeeping import Bookkeeper
from engine.history import HistoryMessage, render
from engine.reconcile import Reconciler
from engine.request import TurnRequest, validate, with_assistant
from engine.runs import RunManager
from engine.turn import Turn
from engine.waiting import WaitingTurn
from graphs.builder import build_graph
from graphs.deps import GraphDeps


class Engine:
    def __init__(self, graph: Any, persistence: Persistence, settings: Settings):
        self.graph = graph
        self.persistence = persistence
        self.settings = settings
        self.threads = persistence.threads
        self.escalations = EscalationStore(persistence.db)
        self.webhooks = WebhookStore(
            persistence.db,
            allowed=networks(settings.webhook_allowed_networks),
            max_endpoints=settings.webhook_max_endpoints,
        )
        self.outbox = Outbox(persistence.db)
        self.analytics = Analytics(persistence.db)
        self.assistants = AssistantStore(persistence.db)
        self.books = Bookkeeper(
            persistence.db, self.threads, self.escalations, self.outbox, self.analytics
        )
        self.runs = RunManager(
            RunStore(persistence.db),
            lost_after=settings.run_lost_after,
            ttl=settings.run_events_ttl,
            log_events=settings.run_event_log,
        )
        self.reconciler = Reconciler(self)
        self.metrics: Metrics | None = None
        self.deps: GraphDeps | None = None
        """The graph's dependencies (the knowledge index: the inbox's drafts search it)."""
        self.knowledge: PartnerKnowledge | None = None
        """Partners' datasets and documents (set by `open`, with the graph's dependencies)."""

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, deps: GraphDeps | None = None) -> AsyncIterator[Engine]:
        async with open_persistence(settings) as persistence:
            deps = deps or GraphDeps(settings)
            graph = build_graph(deps, checkpointer=persistence.checkpointer)
            engine = cls(graph, persistence, settings)
            engine.deps = deps
            engine.knowledge = PartnerKnowledge(KnowledgeStore(persistence.db), deps.knowledge())
            await engine.knowledge.refresh()  # every dataset, from the stored vectors
            yield engine

    # ------------------------------------------------------------------ turns
    def check(self, request: TurnRequest) -> TurnRequest:
        """The request, validated (InvalidRequest with a stable code when unusable)."""
        return validate(request, self.settings.max_message_chars)

    async def begin(self, request: TurnRequest, run_id: str | None = None) -> Turn:
        """Validate, lock the thread and make sure it exists; nothing is stored on failure."""
        request = self.check(request)
        request = with_assistant(request, await self.assistants.get(request.owner.partner))
        request = await self.scoped(request)
        thread_id = request.thread_id or str(uuid.uuid4())
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self.threads.lock(thread_key(request.owner, thread_id)))
            info = await self.threads.ensure(request.owner, thread_id, request.message)
            escalation = None
            if info.status == "awaiting_human":
                escalation = await self.escalations.open_for_thread(info.key)
                if escalation is None:  # the thread's books disagree: refuse, as before
                    raise AwaitingHuman(
                        "this conversation is waiting for an agronomist's reply; new messages "
                        "are accepted once the expert has answered"
                    )
        except BaseException:
            await stack.aclose()
            raise
        if escalation is not None:
            # Kept for the expert and acknowledged; no bot answer (engine.waiting).
            return WaitingTurn(self, request, info, stack, escalation, run_id)
        return Turn(self, request, info, stack, run_id)

    async def scoped(self, request: TurnRequest) -> TurnRequest:
        """The request with the datasets its turn searches (the partner's, checked)."""
        if self.knowledge is None:
            return request
        scope = await self.knowledge.scope(
            request.owner.partner,
            request.datasets,
            request.include_bundled is not False,
            skip_missing=request.datasets_by_default,
        )
        return replace(request, context=replace(request.context, datasets=scope))

    async def stream(self, request: TurnRequest) -> AsyncGenerator[Event]:
        turn = await self.begin(request)
        async with aclosing(turn.events()) as events:
            async for event in events:
                yield event

    async def invoke(self, request: TurnRequest) -> TurnResult:
        turn = await self.begin(replace(request, stream_tokens=False))  # the whole answer
        parts: list[str] = []
        summary: SourcesEvent | None = None
        # aclosing: on an error the generator is closed now (lock released, failure recorded),
        # not whenever it is garbage-collected.
        async with aclosing(turn.events()) as events:
            async for event in events:
                if isinstance(event, TokenEvent):
                    parts.append(event.text)
                elif isinstance(event, SourcesEvent):
                    summary = event
        if summary is None:  # a turn that completes always ends with its sources
            raise RuntimeError("the turn ended without its sources event")
        return TurnResult.of(turn.thread_id, turn.run_id, "".join(parts), summary)

    # ------------------------------------------------------------------ threads
    async def thread(self, owner: Owner, thread_id: str) -> ThreadInfo:
        info = await self.threads.get(owner, thread_id)
        if info is None:
            raise NotFound("thread not found", code="thread_not_found")
        return info

    async def history(
        self, owner: Owner, thread_id: str
    ) -> tuple[ThreadInfo, list[HistoryMessage]]:
        info = await self.thread(owner, thread_id)
        state = await self.graph.aget_state({"configurable": {"thread_id": info.key}})
        values = state.values if state and state.values else {}
        return info, render(values.get("messages", []))

    async def delete_thread(self, owner: Owner, thread_id: str) -> None:
        """Delete a thread and every trace of its text: checkpoints, escalations, feedback."""
        info = await self.thread(owner, thread_id)
        async with self.threads.lock(info.key):
            await self.persistence.checkpointer.adelete_thread(info.key)
            await self.persistence.forget_thread(info.key)

    async def feedback(
        self, owner: Owner, thread_id: str, run_id: str, score: int, comment: str | None
    ) -> Feedback:
        """Rate one answer of a thread; the webhook event carries ids and the score only."""
        info = await self.thread(owner, thread_id)
        if not await self.analytics.run_exists(owner.partner, info.key, run_id):
            raise NotFound("no such run in this thread", code="run_not_found")
        async with self.persistence.db.transaction():
            record = await self.analytics.add_feedback(
                owner.partner, info.key, run_id, score, comment
            )
            await self.outbox.emit(
                owner.partner,
                "feedback.submitted",
                {
                    "conversation_id": thread_id,
                    "user_id": owner.user_id,
                    "run_id": run_id,
                    "feedback_id": record["id"],
                    "score": score,
                },
            )
        return record

    # ------------------------------------------------------------------ hand-off
    async def resume(
        self, partner: str, escalation_id: str, answer: str, agent_id: str, keep: bool = False
    ) -> Escalation:
        return await handoff.resume(self, partner, escalation_id, answer, agent_id, keep)

    async def close(
        self, partner: str, escalation_id: str, agent_id: str, reason: CloseReason
    ) -> Escalation:
        return await handoff.close(self, partner, escalation_id, agent_id, reason)

    async def escalation_detail(self, partner: str, escalation_id: str) -> inbox.Detail:
        return await inbox.detail(self, partner, escalation_id)

    def escalation_changes(
        self, partner: str, after: str | None, stopping: Callable[[], bool]
    ) -> AsyncGenerator[Escalation]:
        """The partner's escalation changes after the event id `after` (validated now: 422
        `invalid_last_event_id`), until `stopping()`."""
        inbox.cursor_of(after)
        return inbox.changes(self, partner, after, stopping)

    async def claim(self, partner: str, escalation_id: str, agent_id: str) -> Escalation:
        return await handoff.claim(self, partner, escalation_id, agent_id)

    async def release(self, partner: str, escalation_id: str, agent_id: str) -> Escalation:
        return await handoff.release(self, partner, escalation_id, agent_id)

    async def handoff_times(self, partner: str, start: date, end: date) -> dict[str, Any]:
        """Time to claim and to answer, p50/p90, of escalations created in [start, end]."""
        rows = await self.escalations.timings(
            partner, start.isoformat(), (end + timedelta(days=1)).isoformat()
        )
        return {
            "period": {"start": start.isoformat(), "end": end.isoformat()},
            **handoff_stats.summarize(rows),
        }

    def claim_holder(self, escalation: Escalation) -> str | None:
        """Who holds the escalation now (None when unclaimed or the claim lapsed)."""
        return escalation.holder(handoff.stale_before(self))
