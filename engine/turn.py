"""One started turn: stream the graph, translate its chunks into engine events, keep the books.

`Turn.events()` yields metadata → node… → token… → sources and raises a typed `AlimError` when
the run fails; turning that into an `error` + `done` pair is the edge's job (SSE, CLI).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage

from alim.errors import (
    AlimError,
    CheckpointerUnavailable,
    InternalError,
    ProviderUnavailable,
    RunTimeout,
    storage_error,
)
from alim.events import Event, MetadataEvent, NodeEvent, SourcesEvent, TokenEvent
from alim.logs import partner_var, run_var, thread_var
from alim.threads import ThreadInfo
from alim.timeutil import now_iso
from engine.bookkeeping import RunRecord
from engine.request import TurnRequest
from graphs.context import Context
from graphs.messages import AnswerPiece, text_of

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger(__name__)
STREAM_MODES = ["tasks", "custom", "updates", "values"]
"""`custom`: the answer's pieces, as the `generate` node writes them (graphs.nodes.generate)."""
WHOLE_ANSWER_MODES = [m for m in STREAM_MODES if m != "custom"]
"""For a turn that does not stream tokens (`TurnRequest.stream_tokens`)."""


class Turn:
    """One started turn. `events()` may be consumed once; closing it releases the thread."""

    def __init__(
        self,
        engine: Engine,
        request: TurnRequest,
        info: ThreadInfo,
        stack: AsyncExitStack,
        run_id: str | None = None,
    ):
        self.engine = engine
        self.request = request
        self.info = info
        self.run_id = run_id or str(uuid.uuid4())
        self._stack = stack
        self._started = time.monotonic()
        self._first_token: float | None = None
        self.question = HumanMessage(
            request.message,
            id=str(uuid.uuid4()),
            # The run's id: a turn that does not complete is found by it (engine.reconcile).
            additional_kwargs={"created_at": now_iso(), "run_id": self.run_id},
        )

    @property
    def thread_id(self) -> str:
        return self.info.thread_id

    @property
    def question_record(self) -> dict[str, Any] | None:
        """The question as the run record keeps it: with `durability="exit"` the checkpoint is
        written when the turn ends, so a turn cut before (kill -9) is closed from this."""
        q = self.question
        return {"id": q.id, "text": q.content, "created_at": q.additional_kwargs["created_at"]}

    @property
    def record(self) -> RunRecord:
        return RunRecord(self.run_id, self.request.owner, self.info)

    async def aclose(self) -> None:
        await self._stack.aclose()

    async def events(self) -> AsyncGenerator[Event]:
        thread_var.set(self.thread_id)
        run_var.set(self.run_id)
        partner_var.set(self.request.owner.partner)
        outcome = "error"
        try:
            yield MetadataEvent(self.thread_id, self.run_id)
            async for event in self._run():
                yield event
            outcome = "ok"
        except AlimError:
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except Exception as exc:
            if storage_error(exc):
                log.warning("checkpoint store error in run %s: %s", self.run_id, type(exc).__name__)
                raise CheckpointerUnavailable("the conversation store is unavailable") from exc
            log.exception("run %s failed", self.run_id)
            raise InternalError(f"internal error (run {self.run_id})") from exc
        finally:
            await self.aclose()
            if outcome != "ok":
                if self.engine.metrics is not None:
                    self.engine.metrics.runs.labels("unknown", outcome).inc()
                await self.engine.books.failed(self.record, outcome, self._timing())

    def _config(self) -> dict[str, Any]:
        req = self.request
        return {
            "configurable": {"thread_id": self.info.key},
            "run_id": self.run_id,
            # The partner's tags first: the server's own keys win (a partner cannot pass a run
            # off as another partner's or user's in checkpoints and traces).
            "metadata": {
                **req.metadata,
                "partner": req.owner.partner,
                "user_id": req.owner.user_id,
                "thread_id": self.thread_id,
            },
        }

    def _input(self) -> dict[str, Any]:
        req = self.request
        state_in: dict[str, Any] = {"messages": [self.question], "user_id": req.owner.user_id}
        if req.profile is not None:
            state_in["profile"] = req.profile
        return state_in

    async def _chunks(self) -> AsyncIterator[tuple[str, Any]]:
        """The graph's stream, cut at the run's deadline, also inside a silent model call.

        One timer for the whole run, not a timeout per chunk (a streamed answer has dozens):
        when it fires while the graph is awaited, it cancels the task, and that cancellation
        becomes `RunTimeout`; when it fires while the caller handles a chunk, the next read
        raises it instead (the caller's own work is never cancelled)."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        reading = expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            if reading:
                task.cancel()

        timer = loop.call_at(loop.time() + self.engine.settings.run_timeout, expire)
        stream = self.engine.graph.astream(
            self._input(),
            self._config(),
            context=self._context(),
            stream_mode=STREAM_MODES if self.request.stream_tokens else WHOLE_ANSWER_MODES,
            durability=self.engine.settings.checkpoint_durability,
        )
        try:
            while True:
                if expired:
                    raise RunTimeout("the run took too long")
                reading = True
                try:
                    chunk = await anext(stream)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if expired and task.uncancel() <= cancelling:  # the timer's, nobody else's
                        raise RunTimeout("the run took too long") from None
                    raise
                finally:
                    reading = False
                yield chunk
        finally:
            timer.cancel()
            await stream.aclose()

    def _context(self) -> Context:
        """The run's context; a turn that does not stream tokens asks the model for the whole
        answer (no chunks through the model's and LangGraph's callbacks)."""
        ctx = self.request.context
        return ctx if self.request.stream_tokens else replace(ctx, stream_answer=False)

    async def _run(self) -> AsyncIterator[Event]:
        final: dict[str, Any] = {}
        message_count = 0  # from the last full state the graph streamed
        profile = None  # the thread's farm profile (given now or in an earlier turn)
        node_started: dict[str, float] = {}
        interrupted = False
        metrics = self.engine.metrics
        async for mode, payload in self._chunks():
            if mode == "tasks":
                if "input" in payload:
                    node_started[payload["id"]] = time.monotonic()
                    yield NodeEvent(payload["name"])
                elif payload["id"] in node_started and metrics is not None:
                    metrics.node_duration.labels(payload["name"]).observe(
                        time.monotonic() - node_started.pop(payload["id"])
                    )
            elif mode == "custom":
                if isinstance(payload, AnswerPiece) and payload.text:
                    yield self._token(payload.text)
            elif mode == "values":
                message_count = len(payload.get("messages", []))
                profile = payload.get("profile") or profile
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
        escalation_id = await self.engine.books.finished(
            self.record,
            {"profile": profile, **final},
            question=self.request.message,
            interrupted=interrupted,
            message_count=message_count,
            timing=self._timing(),
        )
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
        first = self._first_token
        return {
            "latency_ms": round((done - self._started) * 1000, 1),
            "ttft_ms": round((first - self._started) * 1000, 1) if first is not None else None,
        }
