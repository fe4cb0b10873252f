"""Half turns made whole: after a crash (`kill -9`), a cancelled or failed run, or bookkeeping
that did not commit, the thread's checkpoint, its registry row, the run record, its analytics
row and any escalation are brought to agree.

The graph checkpoints as it goes; the books (engine.bookkeeping) are written in one
transaction after it. A run that did not complete leaves one of three states behind, found from
the run's own user message (tagged with its `run_id`) in the checkpoint:

- **the graph finished** (an answer, or a pause for a human) but the books did not commit:
  they are written now, as the turn would have (the escalation an agronomist must see, the
  `awaiting_human` status, message count, webhooks, analytics), and the run record says
  `success` / `interrupted`;
- **the graph was cut** before an answer: an empty assistant message marked `aborted` (with the
  run's error code, e.g. `run_lost`) closes the turn in the checkpoint, so the history shows the
  question followed by the aborted answer, and the message count follows;
- **the checkpoint never got the question** (checkpoints are written when a turn ends,
  `durability="exit"`, so a `kill -9` mid-turn leaves none): the question kept in the run
  record and the `aborted` marker are written to the checkpoint together; a run without a
  question (a message to a thread that waits for an agronomist) only gets its count and run
  record set right.

`Reconciler.sweep()` runs at start-up and then periodically (each run once: `reconciled_at`);
a thread busy with another turn is left for the next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from alim.errors import AlimError
from alim.events import SourcesEvent, TurnResult, members
from alim.runs import RunInfo
from alim.threads import ThreadInfo
from alim.timeutil import now_iso
from engine.bookkeeping import RunRecord
from graphs.messages import text_of

if TYPE_CHECKING:
    from engine.service import Engine

log = logging.getLogger(__name__)

SWEEP_SECONDS = 5.0
ABORTED_NODE = "generate"
"""The marker is written as this node's output, so the checkpoint's turn has ended."""


def aborted_marker(run_id: str, code: str) -> AIMessage:
    """The assistant entry of a turn that ended without an answer."""
    return AIMessage(
        "",
        response_metadata={"aborted": code, "run_id": run_id, "created_at": now_iso()},
    )


def question_of(run_id: str, question: dict[str, Any]) -> HumanMessage:
    """The run's user message as its turn would have checkpointed it (same id and tags)."""
    return HumanMessage(
        question["text"],
        id=question["id"],
        additional_kwargs={"created_at": question["created_at"], "run_id": run_id},
    )


class Reconciler:
    def __init__(self, engine: Engine):
        self.engine = engine

    async def sweep(self) -> int:
        """Reconcile every run that needs it now; returns how many were."""
        runs = self.engine.runs
        done = 0
        for info in await runs.store.unreconciled(runs.lost_after):
            if info.run_id in runs.live:
                continue  # still ending in this process
            try:
                async with self.engine.threads.lock(info.thread_key):
                    await self.reconcile(info)
            except AlimError as exc:  # the thread is busy (a new turn): next sweep
                log.info("run %s: reconciliation deferred (%s)", info.run_id, exc.code)
                continue
            done += 1
        return done

    async def forever(self) -> None:
        """Sweep every SWEEP_SECONDS (runs of a killed replica become lost only after its
        silence, `lost_after`)."""
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            await self.sweep_logged()

    async def sweep_logged(self) -> None:
        try:
            await self.sweep()
        except asyncio.CancelledError:
            raise
        except Exception:  # the store may be down for a while: try again next time
            log.warning("reconciliation sweep failed", exc_info=True)

    async def reconcile(self, run: RunInfo) -> None:
        engine = self.engine
        if not run.finished:
            await engine.runs.declare_lost(run)
            run = await engine.runs.store.get(run.run_id) or run
        thread = await engine.threads.get(run.owner, run.thread_id)
        if thread is None or thread.key != run.thread_key:  # deleted since
            await engine.runs.store.mark_reconciled(run.run_id)
            return
        config = {"configurable": {"thread_id": thread.key}}
        state = await engine.graph.aget_state(config)
        values: dict[str, Any] = dict(state.values or {}) if state else {}
        messages: list[BaseMessage] = list(values.get("messages") or [])
        asked = next(
            (
                i
                for i, m in enumerate(messages)
                if m.type == "human" and m.additional_kwargs.get("run_id") == run.run_id
            ),
            None,
        )
        waiting = bool(state and state.interrupts)
        # A question checkpointed after this run's (the thread went on): this one is not added.
        later = run.question is not None and any(
            m.type == "human"
            and str(m.additional_kwargs.get("created_at") or "") > run.question["created_at"]
            for m in messages
        )
        answered = asked is not None and any(m.type == "ai" for m in messages[asked + 1 :])
        booked = await self._booked(run.run_id)
        if asked is not None and (waiting or answered) and not booked:
            await self._write_books(run, thread, values, messages[asked], waiting)
        elif asked is not None and not (waiting or answered):
            code = (run.error or {}).get("code") or "run_lost"
            await engine.graph.aupdate_state(
                config, {"messages": [aborted_marker(run.run_id, code)]}, as_node=ABORTED_NODE
            )
            await engine.threads.record_messages(thread.key, len(messages) + 1)
            await self._record_failure(run, thread, code)
        elif asked is None and run.question is not None and not booked and not later:
            code = (run.error or {}).get("code") or "run_lost"
            cut = [question_of(run.run_id, run.question), aborted_marker(run.run_id, code)]
            await engine.graph.aupdate_state(config, {"messages": cut}, as_node=ABORTED_NODE)
            await engine.threads.record_messages(thread.key, len(messages) + 2)
            await self._record_failure(run, thread, code)
        else:
            await engine.threads.record_messages(thread.key, len(messages))
            if not booked:
                await self._record_failure(run, thread, (run.error or {}).get("code", "error"))
        await engine.runs.store.mark_reconciled(run.run_id)
        log.warning("run %s reconciled with its thread", run.run_id)

    async def _booked(self, run_id: str) -> bool:
        """Whether the run's books were written (its analytics row says `ok`)."""
        row = await self.engine.persistence.db.fetch_one(
            "SELECT outcome FROM alim_runs WHERE run_id = ?", (run_id,)
        )
        return row is not None and row["outcome"] == "ok"

    async def _write_books(
        self,
        run: RunInfo,
        thread: ThreadInfo,
        values: dict[str, Any],
        question: BaseMessage,
        waiting: bool,
    ) -> None:
        engine = self.engine
        db = engine.persistence.db
        messages = values.get("messages") or []
        timing = {"latency_ms": 0.0, "ttft_ms": None}
        async with db.transaction():
            # The failed run's analytics row gives way to the row of the turn it was.
            await db.run("DELETE FROM alim_runs WHERE run_id = ?", (run.run_id,))
            escalation_id = await engine.books.finished(
                RunRecord(run.run_id, run.owner, thread),
                values,
                question=text_of(question),
                interrupted=waiting,
                message_count=len(messages),
                timing=timing,
            )
        answer = next((m for m in reversed(messages) if m.type == "ai"), None)
        summary = SourcesEvent(
            sources=values.get("sources") or [],
            confidence=values.get("confidence"),
            escalated=bool(values.get("escalated")),
            escalation_reason=values.get("escalation_reason"),
            route=values.get("route"),
            model=values.get("model"),
            usage=values.get("usage"),
            escalation_id=escalation_id,
        )
        text = values.get("handoff") or (text_of(answer) if answer is not None else "")
        result = TurnResult.of(run.thread_id, run.run_id, text, summary)
        await engine.runs.store.finish(
            run.run_id, "interrupted" if waiting else "success", result=members(result)
        )

    async def _record_failure(self, run: RunInfo, thread: ThreadInfo, code: str) -> None:
        """The analytics row of a run that left no answer, unless it has one already."""
        db = self.engine.persistence.db
        if await db.fetch_one("SELECT run_id FROM alim_runs WHERE run_id = ?", (run.run_id,)):
            return
        await self.engine.analytics.record_run(
            **RunRecord(run.run_id, run.owner, thread).analytics_ids,
            outcome="lost" if code == "run_lost" else "error",
            latency_ms=0.0,
        )
