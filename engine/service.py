"""The engine: run or stream one turn of a thread. The API and the CLI both call this code.

engine = Engine(graph, persistence, settings)
turn = await engine.begin(request)      # validates, locks the thread (ThreadBusy → 409)
async for event in turn.events(): ...   # metadata, node…, token…, sources | error, done
result = await engine.invoke(request)   # the same, folded into a TurnResult
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage

from alim.analytics import Analytics
from alim.assistants import AssistantStore
from alim.errors import (
    AlimError,
    AwaitingHuman,
    CheckpointerUnavailable,
    Conflict,
    InvalidRequest,
    NotFound,
    ProviderUnavailable,
)
from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
    TurnResult,
)
from alim.handoff import Escalation, EscalationStore
from alim.logs import partner_var, run_var, thread_var
from alim.metrics import Metrics
from alim.persistence import Persistence, open_persistence
from alim.settings import Settings
from alim.threads import Owner, ThreadInfo, thread_key
from alim.webhooks import Outbox, WebhookStore
from graphs.context import Context
from graphs.messages import now_iso, text_of

log = logging.getLogger(__name__)
ANSWER_NODES = frozenset({"generate", "escalate", "await_human"})
"""Nodes whose message tokens the user sees."""


@dataclass
class TurnRequest:
    message: str
    owner: Owner
    thread_id: str | None = None
    profile: dict[str, Any] | None = None
    context: Context = field(default_factory=Context)
    metadata: dict[str, Any] = field(default_factory=dict)


def storage_error_types() -> tuple[type[Exception], ...]:
    """Exceptions that mean the checkpoint store is unreachable (not a bug of ours)."""
    import psycopg
    import psycopg_pool

    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg_pool.PoolTimeout)


def storage_error(exc: BaseException) -> bool:
    return isinstance(exc, storage_error_types())


class Turn:
    """One started turn. `events()` may be consumed once; `aclose()` releases the thread."""

    def __init__(
        self, engine: Engine, request: TurnRequest, info: ThreadInfo, stack: AsyncExitStack
    ):
        self.engine = engine
        self.request = request
        self.info = info
        self.run_id = str(uuid.uuid4())
        self._stack = stack
        self._started = time.monotonic()
        self._first_token: float | None = None

    @property
    def thread_id(self) -> str:
        return self.info.thread_id

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def events(self) -> AsyncIterator[Event]:
        thread_var.set(self.thread_id)
        run_var.set(self.run_id)
        partner_var.set(self.request.owner.partner)
        outcome = "error"
        try:
            yield MetadataEvent(self.thread_id, self.run_id)
            async for event in self._run():
                yield event
            outcome = "ok"
        except AlimError as exc:
            yield ErrorEvent(exc.code, exc.message)
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except Exception as exc:
            if storage_error(exc):
                log.warning("checkpoint store error in run %s: %s", self.run_id, type(exc).__name__)
                err = CheckpointerUnavailable("the conversation store is unavailable")
                yield ErrorEvent(err.code, err.message)
            else:
                log.exception("run %s failed", self.run_id)
                yield ErrorEvent("internal_error", f"internal error (run {self.run_id})")
        finally:
            await self.aclose()
            if outcome != "ok":
                await self._record_failure(outcome)
        yield DoneEvent()

    def _config(self) -> dict[str, Any]:
        req = self.request
        return {
            "configurable": {"thread_id": self.info.key},
            "run_id": self.run_id,
            "metadata": {
                "partner": req.owner.partner,
                "user_id": req.owner.user_id,
                "thread_id": self.thread_id,
                **req.metadata,
            },
        }

    async def _run(self) -> AsyncIterator[Event]:
        req = self.request
        graph = self.engine.graph
        config = self._config()
        message = HumanMessage(
            req.message, id=str(uuid.uuid4()), additional_kwargs={"created_at": now_iso()}
        )
        state_in: dict[str, Any] = {"messages": [message], "user_id": req.owner.user_id}
        if req.profile is not None:
            state_in["profile"] = req.profile
        final: dict[str, Any] = {}
        message_count = 0  # from the last full state the graph streamed
        node_started: dict[str, float] = {}
        interrupted = False
        deadline = self._started + self.engine.settings.run_timeout
        async for mode, payload in graph.astream(
            state_in,
            config,
            context=req.context,
            stream_mode=["tasks", "messages", "updates", "values"],
        ):
            if time.monotonic() > deadline:
                raise AlimError("the run took too long", code="run_timeout", status=504)
            if mode == "tasks":
                if "input" in payload:
                    node_started[payload["id"]] = time.monotonic()
                    yield NodeEvent(payload["name"])
                elif payload["id"] in node_started and self.engine.metrics is not None:
                    self.engine.metrics.node_duration.labels(payload["name"]).observe(
                        time.monotonic() - node_started.pop(payload["id"])
                    )
            elif mode == "messages":
                chunk, meta = payload
                if meta.get("langgraph_node") in ANSWER_NODES and isinstance(chunk, BaseMessage):
                    text = text_of(chunk)
                    if text:
                        yield self._token(text)
            elif mode == "values":
                message_count = len(payload.get("messages", []))
            elif mode == "updates":
                for node, update in payload.items():
                    if node == "__interrupt__":
                        interrupted = True
                    elif isinstance(update, dict):
                        final.update(update)
        if self._first_token is None:
            answer = [m for m in final.get("messages", []) if m.type == "ai"]
            text = final.get("handoff") or (text_of(answer[-1]) if answer else "")
            if text:
                yield self._token(text)
        if final.get("route") is None:
            raise ProviderUnavailable("the run produced no answer")
        escalation_id = await self._finish(final, interrupted, message_count)
        metrics = self.engine.metrics
        if metrics is not None:
            metrics.runs.labels(final.get("route") or "unknown", "ok").inc()
            if final.get("escalated"):
                metrics.escalations.labels(final.get("escalation_reason") or "unknown").inc()
            for kind in ("input_tokens", "output_tokens"):
                if (final.get("usage") or {}).get(kind):
                    metrics.tokens.labels(kind.removesuffix("_tokens")).inc(final["usage"][kind])
        yield SourcesEvent(
            sources=final.get("sources") or [],
            confidence=final.get("confidence"),
            escalated=bool(final.get("escalated")),
            escalation_reason=final.get("escalation_reason"),
            route=final.get("route"),
            model=final.get("model"),
            usage=final.get("usage"),
            escalation_id=escalation_id,
        )

    def _token(self, text: str) -> TokenEvent:
        metrics = self.engine.metrics
        if self._first_token is None:
            self._first_token = time.monotonic()
            if metrics is not None:
                metrics.ttft.observe(self._first_token - self._started)
        if metrics is not None:
            metrics.chunks.inc()
        return TokenEvent(text)

    def _timing(self) -> dict[str, Any]:
        done = time.monotonic()
        return {
            "latency_ms": round((done - self._started) * 1000, 1),
            "ttft_ms": round((self._first_token - self._started) * 1000, 1)
            if self._first_token is not None
            else None,
        }

    async def _finish(self, final: dict[str, Any], interrupted: bool, count: int) -> str | None:
        """Bookkeeping of a completed turn, in one transaction: message count, escalation,
        thread status, the run's analytics row and the webhook events."""
        engine = self.engine
        owner = self.request.owner
        usage = final.get("usage") or {}
        base = {"conversation_id": self.thread_id, "user_id": owner.user_id}
        escalation_id = None
        async with engine.persistence.db.transaction():
            await engine.threads.record_messages(self.info.key, count)
            if self.info.message_count == 0:
                # Ids only: no conversation text is kept in the outbox (a deleted thread must not
                # live on in pending deliveries).
                await engine.outbox.emit(owner.partner, "conversation.created", base)
            await engine.outbox.emit(
                owner.partner,
                "message.received",
                {**base, "run_id": self.run_id, "route": final.get("route")},
            )
            if interrupted:
                escalation = await engine.escalations.open(
                    partner=owner.partner,
                    user_id=owner.user_id,
                    thread_id=self.thread_id,
                    thread_key=self.info.key,
                    run_id=self.run_id,
                    question=self.request.message,
                    reason=final.get("escalation_reason") or "low_confidence",
                    confidence=final.get("confidence"),
                    sources=final.get("sources") or [],
                )
                escalation_id = escalation.id
                await engine.threads.set_status(self.info.key, "awaiting_human")
                await engine.outbox.emit(
                    owner.partner,
                    "conversation.escalated",
                    {
                        **base,
                        "escalation_id": escalation.id,
                        "reason": escalation.reason,
                        "confidence": escalation.confidence,
                    },
                )
            await engine.analytics.record_run(
                run_id=self.run_id,
                partner=owner.partner,
                user_id=owner.user_id,
                thread_id=self.thread_id,
                thread_key=self.info.key,
                route=final.get("route"),
                confidence=final.get("confidence"),
                escalated=bool(final.get("escalated")),
                escalation_reason=final.get("escalation_reason"),
                outcome="ok",
                tokens=usage.get("total_tokens"),
                model=final.get("model"),
                **self._timing(),
            )
        return escalation_id

    async def _record_failure(self, outcome: str) -> None:
        owner = self.request.owner
        if self.engine.metrics is not None:
            self.engine.metrics.runs.labels("unknown", outcome).inc()
        try:
            await asyncio.shield(
                self.engine.analytics.record_run(
                    run_id=self.run_id,
                    partner=owner.partner,
                    user_id=owner.user_id,
                    thread_id=self.thread_id,
                    thread_key=self.info.key,
                    outcome=outcome,
                    **self._timing(),
                )
            )
        except Exception:  # analytics must never hide the run's own failure
            log.warning("could not record the failed run %s", self.run_id)


class Engine:
    def __init__(self, graph: Any, persistence: Persistence, settings: Settings):
        self.graph = graph
        self.persistence = persistence
        self.threads = persistence.threads
        self.escalations = EscalationStore(persistence.db)
        self.webhooks = WebhookStore(persistence.db)
        self.outbox = Outbox(persistence.db)
        self.analytics = Analytics(persistence.db)
        self.assistants = AssistantStore(persistence.db)
        self.metrics: Metrics | None = None
        self.settings = settings

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings, deps: Any = None) -> AsyncIterator[Engine]:
        from graphs.builder import build_graph
        from graphs.deps import GraphDeps

        async with open_persistence(settings) as persistence:
            graph = build_graph(deps or GraphDeps(settings), checkpointer=persistence.checkpointer)
            yield cls(graph, persistence, settings)

    def validate(self, request: TurnRequest) -> None:
        text = request.message
        if not text or not text.strip():
            raise InvalidRequest("message is empty", code="message_empty")
        if len(text) > self.settings.max_message_chars:
            raise InvalidRequest(
                f"message is longer than {self.settings.max_message_chars} characters",
                code="message_too_long",
            )
        if "\x00" in text:
            raise InvalidRequest("message contains a NUL character", code="invalid_characters")

    async def begin(self, request: TurnRequest) -> Turn:
        """Validate, lock the thread and make sure it exists; nothing is stored on failure."""
        self.validate(request)
        request = await self._with_assistant(replace(request, message=request.message.strip()))
        thread_id = request.thread_id or str(uuid.uuid4())
        stack = AsyncExitStack()
        try:
            await stack.enter_async_context(self.threads.lock(thread_key(request.owner, thread_id)))
            info = await self.threads.ensure(request.owner, thread_id, request.message)
            if info.status == "awaiting_human":
                raise AwaitingHuman(
                    "this conversation is waiting for an agronomist's reply; new messages are "
                    "accepted once the expert has answered"
                )
        except BaseException:
            await stack.aclose()
            raise
        return Turn(self, request, info, stack)

    async def _with_assistant(self, request: TurnRequest) -> TurnRequest:
        """Apply the partner's assistant settings where the request leaves a choice open."""
        a = await self.assistants.get(request.owner.partner)
        ctx = request.context
        changes: dict[str, Any] = {}
        if a.model and not ctx.model:
            changes["model"] = a.model
        if a.instructions:
            changes["instructions"] = a.instructions
        if a.escalation_threshold is not None:
            changes["escalation_threshold"] = a.escalation_threshold
        if a.default_language != "auto" and ctx.language == "auto":
            changes["language"] = a.default_language
        if a.default_region:
            changes["default_region"] = a.default_region
        metadata = {**request.metadata, "assistant": a.display_name}
        if a.updated_at:
            metadata["assistant_updated_at"] = a.updated_at
        return replace(request, context=replace(ctx, **changes), metadata=metadata)

    async def stream(self, request: TurnRequest) -> AsyncIterator[Event]:
        turn = await self.begin(request)
        async for event in turn.events():
            yield event

    async def invoke(self, request: TurnRequest) -> TurnResult:
        turn = await self.begin(request)
        parts: list[str] = []
        summary: SourcesEvent | None = None
        # aclosing: on an error event the generator is closed now (lock released, failure
        # recorded), not whenever it is garbage-collected.
        async with aclosing(turn.events()) as events:  # type: ignore[type-var]
            async for event in events:
                if isinstance(event, TokenEvent):
                    parts.append(event.text)
                elif isinstance(event, SourcesEvent):
                    summary = event
                elif isinstance(event, ErrorEvent):
                    raise _error_from(event)
        assert summary is not None
        return TurnResult(
            response="".join(parts),
            thread_id=turn.thread_id,
            model=summary.model or "",
            run_id=turn.run_id,
            route=summary.route,
            confidence=summary.confidence,
            escalated=summary.escalated,
            escalation_reason=summary.escalation_reason,
            sources=summary.sources,
            usage=summary.usage,
            escalation_id=summary.escalation_id,
        )

    # ------------------------------------------------------------------ threads
    async def thread(self, owner: Owner, thread_id: str) -> ThreadInfo:
        info = await self.threads.get(owner, thread_id)
        if info is None:
            raise NotFound("thread not found", code="thread_not_found")
        return info

    async def history(
        self, owner: Owner, thread_id: str
    ) -> tuple[ThreadInfo, list[dict[str, Any]]]:
        info = await self.thread(owner, thread_id)
        state = await self.graph.aget_state({"configurable": {"thread_id": info.key}})
        messages = []
        for m in state.values.get("messages", []) if state and state.values else []:
            if m.type == "human":
                messages.append(
                    {
                        "role": "user",
                        "content": text_of(m),
                        "created_at": m.additional_kwargs.get("created_at"),
                    }
                )
            elif m.type == "ai":
                meta = m.response_metadata or {}
                messages.append(
                    {
                        "role": "assistant",
                        "content": text_of(m),
                        "created_at": meta.get("created_at"),
                        "sources": meta.get("sources") or [],
                        "from_human": bool(meta.get("from_human")),
                    }
                )
        return info, messages

    async def resume(
        self, partner: str, escalation_id: str, answer: str, agent_id: str
    ) -> Escalation:
        """An agronomist answers an escalation: the paused graph resumes with the answer."""
        from langgraph.types import Command

        if not answer.strip():
            raise InvalidRequest("answer is empty", code="answer_empty")
        escalation = await self.escalations.get(partner, escalation_id)
        if escalation is None:
            raise NotFound("escalation not found", code="escalation_not_found")
        if escalation.status != "open":
            raise Conflict("this escalation is already resolved", code="escalation_resolved")
        config = {"configurable": {"thread_id": escalation.thread_key}}
        async with self.threads.lock(escalation.thread_key):
            await self.graph.ainvoke(
                Command(resume={"answer": answer.strip(), "agent_id": agent_id}), config
            )
            state = await self.graph.aget_state(config)
            async with self.persistence.db.transaction():
                await self.escalations.resolve(escalation_id, answer.strip(), agent_id)
                await self.threads.set_status(escalation.thread_key, "active")
                await self.threads.record_messages(
                    escalation.thread_key, len(state.values.get("messages", []))
                )
                await self.outbox.emit(
                    partner,
                    "conversation.resolved",
                    {
                        "conversation_id": escalation.thread_id,
                        "user_id": escalation.user_id,
                        "escalation_id": escalation_id,
                        "assigned_agent": agent_id,
                    },
                )
        resolved = await self.escalations.get(partner, escalation_id)
        assert resolved is not None
        return resolved

    async def delete_thread(self, owner: Owner, thread_id: str) -> None:
        info = await self.thread(owner, thread_id)
        async with self.threads.lock(info.key):
            await self.persistence.checkpointer.adelete_thread(info.key)
            async with self.persistence.db.transaction():
                await self.escalations.cancel_for_thread(info.key)
                await self.threads.delete(info.key)


def _error_from(event: ErrorEvent) -> AlimError:
    from alim import errors

    for cls in (
        errors.ProviderUnavailable,
        errors.CheckpointerUnavailable,
        errors.InvalidRequest,
        errors.ThreadBusy,
        errors.IndexCorrupt,
        errors.IndexMismatch,
    ):
        if cls.code == event.code:
            return cls(event.detail)
    return AlimError(event.detail, code=event.code)
