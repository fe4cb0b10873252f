"""Runs that outlive their connection: started once, followed by any number of streams.

A `RunManager` (one per process) runs each started turn in a task of its own. Every event gets a
sequence number (from 1) and is written to the durable log (`alim.runs.RunStore`) in batches (at
most FLUSH_SECONDS after the previous write, at once when FLUSH_EVENTS wait, always with the last
event); followers in this process get events from memory as soon as they are logged. So every
event a client has seen is in the log, and a resume after a crash has no gap. If the log cannot
be written (the store is down), followers get the events anyway: the answer matters more than
its resumability. A write that waits is a timer, not a task per run: a run spends most of its
life waiting for its model, and a server holds thousands of them. A maintenance loop writes the
heartbeat of the live runs, picks up cancel requests made on other replicas and prunes runs older
than the TTL.

Following a run (`follow_batches`): from memory when it runs in this process, else from the log,
polling for more while its process still beats; a run whose process stopped beating (killed,
crashed) is declared lost: its log gets `error` (`run_lost`) and `done`, once, whoever notices
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass, field
from typing import Any

from alim.errors import AlimError, NotFound, ThreadBusy
from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    QueuedEvent,
    SourcesEvent,
    TokenEvent,
    TurnResult,
    members,
    wire,
)
from alim.runs import LoggedEvent, RunInfo, RunStatus, RunStore
from alim.tasks import stop_tasks
from alim.threads import Owner
from engine.turn import Turn

log = logging.getLogger(__name__)

FLUSH_EVENTS = 128
FLUSH_SECONDS = 0.1
TICK_SECONDS = 0.25
"""The maintenance loop's period: cancel requests from other replicas are seen this fast."""
HEARTBEAT_SECONDS = 1.0
PRUNE_SECONDS = 600.0
POLL_SECONDS = 0.1
"""How often a follower of a run in another process reads the log for more."""
QUEUE_POLL_SECONDS = 0.05
"""How often the first queued run of a thread tries the thread's lock."""

CANCELLED_DETAIL = "the run was cancelled"
SHUTDOWN_DETAIL = "the server is restarting; please send the message again"
LOST_DETAIL = "the server running this answer stopped; please send the message again"


@dataclass
class LiveRun:
    """A run executing in this process, with every event it has sent so far."""

    run_id: str
    owner: Owner
    thread_id: str
    events: list[LoggedEvent] = field(default_factory=list)
    logged: int = 0
    """How many of `events` are in the durable log."""
    visible: int = 0
    """How many of `events` followers may see: the logged ones (all, once the log failed)."""
    unlogged: bool = False
    """Followers get events without waiting for the log (the log is off, or failed)."""
    last_flush: float = field(default_factory=time.monotonic)
    """When the log was last written (the start: the first events wait for the first token, or
    at most FLUSH_SECONDS, to be written together)."""
    answering: bool = False
    """A token has been sent."""
    status: RunStatus = "running"
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    stop_code: str | None = None
    worker: asyncio.Task[None] | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    flush_timer: asyncio.TimerHandle | None = None
    """The next write of the log, while events wait for one."""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _flushing: asyncio.Lock = field(default_factory=asyncio.Lock)

    def add(self, event: Event) -> None:
        name, data = wire(event)
        self.events.append(LoggedEvent(len(self.events) + 1, name, data))
        if self.unlogged:
            self.show(len(self.events))

    def show(self, count: int) -> None:
        """Let followers see the first `count` events."""
        self.visible = max(self.visible, count)
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def changed(self) -> asyncio.Event:
        """An event set the next time the run sends something (or ends)."""
        return self._changed


def parse_event_id(value: str | None, run_id: str | None = None) -> int | None:
    """The sequence number of a `Last-Event-ID` (`<run_id>:<seq>`, or a bare `<seq>`); None when
    absent. ValueError when malformed or naming another run."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    named, sep, seq = text.rpartition(":")
    if sep and run_id is not None and named != run_id:
        raise ValueError("the Last-Event-ID names another run")
    number = int(seq if sep else text)
    if number < 0:
        raise ValueError("negative event id")
    return number


class RunManager:
    def __init__(self, store: RunStore, *, lost_after: float, ttl: float, log_events: bool = True):
        self.store = store
        self.log_events = log_events
        self.lost_after = lost_after
        self.ttl = ttl
        self.live: dict[str, LiveRun] = {}
        self._queues: dict[str, list[LiveRun]] = {}
        """Thread key -> its runs waiting in this process, in arrival order."""
        self._writes: set[asyncio.Task[None]] = set()
        """Log writes started by a run's flush timer (held here until they end)."""
        self._loop: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._maintain(), name="alim-runs")

    async def aclose(self, grace: float = 0.0) -> None:
        """Let live runs finish for up to `grace` seconds, then stop them
        (`server_shutting_down`)."""
        runs = list(self.live.values())
        if runs and grace > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await asyncio.gather(*(r.finished.wait() for r in runs))
        for run in list(self.live.values()):
            self.stop(run, "server_shutting_down")
        for run in runs:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await run.finished.wait()
        if self._loop is not None:
            await stop_tasks([self._loop])

    # ------------------------------------------------------------------ running
    async def launch(self, turn: Turn, held: AsyncExitStack | None = None) -> LiveRun:
        """Run a begun turn to its end, whatever happens to the connection that asked for it.
        `held` (the stream slot) is released when the run ends."""
        info = turn.info
        try:
            await self.store.create(
                turn.run_id,
                turn.request.owner,
                info.key,
                info.thread_id,
                "running",
                turn.question_record,
            )
        except BaseException:
            await turn.aclose()
            raise

        async def begun() -> Turn:
            return turn

        return self._start(LiveRun(turn.run_id, turn.request.owner, info.thread_id), begun, held)

    async def enqueue(
        self,
        begin: Callable[[], Awaitable[Turn]],
        run_id: str,
        owner: Owner,
        thread: tuple[str, str],
        held: AsyncExitStack | None = None,
    ) -> LiveRun:
        """A run that waits for its thread (`thread`: key, id) to be free, then runs: after the
        runs queued before it in this process, in arrival order. It reports `queued` first."""
        key, thread_id = thread
        await self.store.create(run_id, owner, key, thread_id, "pending")
        run = LiveRun(run_id, owner, thread_id, status="pending")
        queue = self._queues.setdefault(key, [])
        queue.append(run)

        async def when_free() -> Turn:
            try:
                await self._send(run, QueuedEvent(thread_id, run_id), flush=True)
                while True:
                    if queue[0] is run:
                        try:
                            turn = await begin()
                            break
                        except ThreadBusy:
                            pass
                    await asyncio.sleep(QUEUE_POLL_SECONDS)
            finally:
                queue.remove(run)
                if not queue:
                    self._queues.pop(key, None)
            run.status = "running"
            await self.store.set_status(run_id, "running", turn.question_record)
            return turn

        return self._start(run, when_free, held)

    def queued(self, thread_key: str) -> bool:
        """Whether runs of this thread wait in this process."""
        return bool(self._queues.get(thread_key))

    def _start(
        self, run: LiveRun, begin: Callable[[], Awaitable[Turn]], held: AsyncExitStack | None
    ) -> LiveRun:
        run.unlogged = not self.log_events  # not logged: followers see events at once
        self.live[run.run_id] = run
        run.worker = asyncio.create_task(self._work(run, begin, held), name=f"run-{run.run_id}")
        return run

    def stop_id(self, run_id: str, code: str) -> None:
        """Cancel the run if it runs in this process (else: `cancel`, through the store)."""
        if (run := self.live.get(run_id)) is not None:
            self.stop(run, code)

    def stop(self, run: LiveRun, code: str) -> None:
        """Cancel a live run; its stream ends with `error` (`code`) and `done`."""
        if run.worker is not None and not run.worker.done() and run.stop_code is None:
            run.stop_code = code
            run.worker.cancel()

    async def _work(
        self, run: LiveRun, begin: Callable[[], Awaitable[Turn]], held: AsyncExitStack | None
    ) -> None:
        tokens: list[str] = []
        summary: SourcesEvent | None = None
        try:
            try:
                turn = await begin()
                async with aclosing(turn.events()) as events:
                    async for event in events:
                        if isinstance(event, TokenEvent):
                            tokens.append(event.text)
                        elif isinstance(event, SourcesEvent):
                            summary = event
                        await self._send(run, event)
            except AlimError as exc:
                run.status = "error"
                run.error = {"code": exc.code, "detail": exc.message, "status": exc.status}
            except asyncio.CancelledError:
                code = run.stop_code or "cancelled"
                detail = SHUTDOWN_DETAIL if code == "server_shutting_down" else CANCELLED_DETAIL
                run.status = "cancelled" if code == "cancelled" else "error"
                run.error = {"code": code, "detail": detail, "status": 409}
                if run.stop_code is None:  # not ours: the process is going down
                    raise
            else:
                if summary is None:
                    run.status = "error"
                    run.error = {"code": "internal_error", "detail": "no result", "status": 500}
                else:
                    run.status = "interrupted" if summary.escalation_id else "success"
                    result = TurnResult.of(run.thread_id, run.run_id, "".join(tokens), summary)
                    run.result = members(result)
        finally:
            try:
                await self._end(run)
            except Exception:
                log.warning("run %s: its end could not be logged", run.run_id, exc_info=True)
            finally:
                self._cancel_flush(run)
                run.show(len(run.events))
                if held is not None:
                    await held.aclose()
                self.live.pop(run.run_id, None)
                run.finished.set()
                run.changed().set()

    async def _end(self, run: LiveRun) -> None:
        """Log the run's last events (`error` if it failed, then `done`) and its record in one
        transaction, and only then show them: whoever sees `done` and asks for the run finds
        its final status (before, `done` was shown first and a quick GET /runs/{id} could
        still read `running`)."""
        self._cancel_flush(run)
        ending: list[Event] = []
        if run.error is not None:
            ending.append(ErrorEvent(run.error["code"], run.error["detail"]))
        ending.append(DoneEvent())
        async with run._flushing:
            for event in ending:
                name, data = wire(event)
                run.events.append(LoggedEvent(len(run.events) + 1, name, data))
            pending = [] if run.unlogged else run.events[run.logged :]
            async with self.store.db.transaction():
                if pending:
                    await self.store.append(run.run_id, pending)
                await self.store.finish(run.run_id, run.status, result=run.result, error=run.error)
            run.logged += len(pending)

    async def _send(self, run: LiveRun, event: Event, *, flush: bool = False) -> None:
        first_token = isinstance(event, TokenEvent) and not run.answering
        run.answering = run.answering or first_token
        run.add(event)
        # The first token goes out at once (time to first token is what a farmer waits for).
        if flush or first_token or len(run.events) - run.logged >= FLUSH_EVENTS:
            await self._flush(run)
        elif not run.unlogged and run.flush_timer is None:
            # At most FLUSH_SECONDS after the previous write.
            wait = max(run.last_flush + FLUSH_SECONDS - time.monotonic(), 0.0)
            run.flush_timer = asyncio.get_running_loop().call_later(wait, self._flush_due, run)

    def _flush_due(self, run: LiveRun) -> None:
        run.flush_timer = None
        write = asyncio.create_task(self._flush(run), name=f"run-log-{run.run_id}")
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    @staticmethod
    def _cancel_flush(run: LiveRun) -> None:
        if run.flush_timer is not None:
            run.flush_timer.cancel()
            run.flush_timer = None

    async def _flush(self, run: LiveRun) -> None:
        """Write what the log lacks, then show it to the followers. When the log cannot be
        written, the run goes on unlogged: its followers get every event at once."""
        async with run._flushing:
            self._cancel_flush(run)  # this write takes every waiting event
            pending = run.events[run.logged :]
            run.last_flush = time.monotonic()
            if not pending or run.unlogged:
                return
            try:
                await self.store.append(run.run_id, pending)
            except Exception:
                log.warning("run %s: event log write failed; streaming unlogged", run.run_id)
                run.unlogged = True
                run.show(len(run.events))
                return
            run.logged += len(pending)
            run.show(run.logged)

    async def _maintain(self) -> None:
        last_beat = last_prune = 0.0
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                now = time.monotonic()
                ids = list(self.live)
                if ids:
                    for run_id in await self.store.cancel_requested(ids):
                        self.stop_id(run_id, "cancelled")
                if ids and now - last_beat >= HEARTBEAT_SECONDS:
                    await self.store.heartbeat(ids)
                    last_beat = now
                if now - last_prune >= PRUNE_SECONDS:
                    last_prune = now
                    await self.store.prune(self.ttl)
            except Exception:  # the store may be down for a while: try again next tick
                log.warning("run maintenance failed", exc_info=True)

    # ------------------------------------------------------------------ reading
    async def info(self, owner: Owner, run_id: str) -> RunInfo:
        """The run's record (a run whose process is gone is declared lost first)."""
        info = await self.store.get_owned(owner, run_id)
        if info is None:
            raise NotFound("run not found", code="run_not_found")
        if not info.finished and run_id not in self.live and info.silent_for() > self.lost_after:
            await self.declare_lost(info)
            info = await self.store.get_owned(owner, run_id) or info
        return info

    async def cancel(self, owner: Owner, run_id: str) -> RunInfo:
        info = await self.info(owner, run_id)
        if info.finished:
            return info
        run = self.live.get(run_id)
        if run is not None:
            self.stop(run, "cancelled")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await run.finished.wait()
        else:
            await self.store.request_cancel(run_id)
        return await self.info(owner, run_id)

    async def wait(self, owner: Owner, run_id: str) -> RunInfo:
        """The run's record once it has ended (here or in another process)."""
        while True:
            run = self.live.get(run_id)
            if run is not None:
                await run.finished.wait()
            info = await self.info(owner, run_id)
            if info.finished:
                return info
            await asyncio.sleep(POLL_SECONDS)

    async def follow_batches(
        self, run_id: str, after: int = 0
    ) -> AsyncGenerator[list[LoggedEvent]]:
        """Every event of the run after sequence number `after`, live until `done`, a batch at
        a time: each batch is every event there was to read when it was read (a stream writes
        it at once, not event by event). `done` is a run's last event and ends the last batch."""
        seq = after
        while True:
            run = self.live.get(run_id)
            if run is not None:
                async for batch in self._follow_live(run, seq):
                    yield batch
                    seq = batch[-1].seq
                    if batch[-1].event == "done":
                        return
                continue  # it ended between two reads: the rest is in the log
            batch = await self.store.events_after(run_id, seq)
            if batch:
                yield batch
                seq = batch[-1].seq
                if batch[-1].event == "done":
                    return
                continue
            info = await self.store.get(run_id)
            if info is None:
                return
            if info.finished:
                if not await self.store.events_after(run_id, seq):
                    return  # finished, nothing more logged (its end was not written)
                continue
            if run_id not in self.live and info.silent_for() > self.lost_after:
                await self.declare_lost(info)
                continue
            await asyncio.sleep(POLL_SECONDS)

    @staticmethod
    async def _follow_live(run: LiveRun, after: int) -> AsyncIterator[list[LoggedEvent]]:
        seq = after
        while True:
            changed = run.changed()
            if seq < run.visible:
                batch = run.events[seq : run.visible]
                seq = run.visible
                yield batch
                continue  # more may be visible by now
            if run.finished.is_set():
                return
            await changed.wait()

    async def declare_lost(self, info: RunInfo) -> None:
        """End a run whose process is gone: `error` (`run_lost`) in its record and its log."""
        error: dict[str, Any] = {"code": "run_lost", "detail": LOST_DETAIL, "status": 503}
        if not await self.store.finish(info.run_id, "error", error=error, only_if_unfinished=True):
            return  # someone else noticed first
        last = await self.store.last_seq(info.run_id)
        name, data = wire(ErrorEvent(error["code"], error["detail"]))
        done, done_data = wire(DoneEvent())
        await self.store.append(
            info.run_id, [LoggedEvent(last + 1, name, data), LoggedEvent(last + 2, done, done_data)]
        )
        log.warning("run %s lost: its server stopped before it ended", info.run_id)
