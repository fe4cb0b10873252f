"""Durable runs: each run's status and its event log, and idempotency keys, on `alim.db`.

A run started over HTTP outlives its connection. Its events (the SSE events as sent: name and
data, numbered from 1) are appended to `alim_run_events` in batches; `alim_run_records` holds its
owner, status, a heartbeat of the process running it, a cancel request from another replica and,
once finished, the same result body as `/graph/invoke`. Both are kept for `ALIM_RUN_EVENTS_TTL`
seconds, then pruned; deleting a thread deletes its runs.

`alim_idempotency_keys` maps a partner's `Idempotency-Key` to the run it started, with a hash of
the request so that the same key with another body is refused.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, cast

from alim.db import Database, Row
from alim.migrations import MigratedStore, Migration
from alim.threads import Owner
from alim.timeutil import now_iso

RunStatus = Literal["pending", "running", "success", "error", "cancelled", "interrupted"]
FINISHED: frozenset[str] = frozenset({"success", "error", "cancelled", "interrupted"})
BATCH_ROWS = 100
"""Events per INSERT statement (SQLite allows 32,766 parameters; five per event)."""

_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_run_records (
        run_id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        heartbeat_at TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS alim_run_records_thread ON alim_run_records (thread_key)",
    "CREATE INDEX IF NOT EXISTS alim_run_records_created ON alim_run_records (created_at)",
    """CREATE TABLE IF NOT EXISTS alim_run_events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS alim_idempotency_keys (
        partner TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        run_id TEXT,
        status_code INTEGER,
        response TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (partner, key)
    )""",
    "CREATE INDEX IF NOT EXISTS alim_idempotency_created ON alim_idempotency_keys (created_at)",
]


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One SSE event of a run as it was sent: `id: <run_id>:<seq>`, `event:`, `data:` (slots: a
    live run holds every one of its events in memory)."""

    seq: int
    event: str
    data: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    owner: Owner
    thread_key: str
    thread_id: str
    status: RunStatus
    created_at: str
    updated_at: str
    finished_at: str | None
    heartbeat_at: str
    cancel_requested: bool
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    question: dict[str, Any] | None = None
    """The user message the run answers (`id`, `text`, `created_at`); None for a message sent
    while the thread waits for an agronomist (kept with the escalation instead)."""

    @classmethod
    def from_row(cls, row: Row) -> RunInfo:
        return cls(
            run_id=row["run_id"],
            owner=Owner(row["partner"], row["user_id"]),
            thread_key=row["thread_key"],
            thread_id=row["thread_id"],
            status=cast(RunStatus, row["status"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            cancel_requested=bool(row["cancel_requested"]),
            result=json.loads(row["result"]) if row["result"] else None,
            error=json.loads(row["error"]) if row["error"] else None,
            question=json.loads(row["question"]) if row["question"] else None,
        )

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def silent_for(self, now: datetime | None = None) -> float:
        """Seconds since the process running it last said it was alive."""
        now = now or datetime.now(UTC)
        return (now - datetime.fromisoformat(self.heartbeat_at)).total_seconds()


@dataclass(frozen=True)
class IdempotencyClaim:
    """The row of a partner's idempotency key: `fresh` when this request created it."""

    fresh: bool
    request_hash: str
    run_id: str | None
    status_code: int | None = None
    response: Any = None
    """The first request's response body, for requests that are not runs."""


class RunStore(MigratedStore):
    STORE: ClassVar[str] = "runs"
    MIGRATIONS: ClassVar[list[Migration]] = [
        _V0,
        # 1: runs that did not complete are reconciled with their thread once (engine.reconcile).
        ["ALTER TABLE alim_run_records ADD COLUMN reconciled_at TEXT"],
        # 2: the run's question (id, text, time), so that a turn cut before its checkpoint was
        # written (checkpoints are written when the turn ends) is closed with it.
        ["ALTER TABLE alim_run_records ADD COLUMN question TEXT"],
    ]

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ runs
    async def create(
        self,
        run_id: str,
        owner: Owner,
        thread_key: str,
        thread_id: str,
        status: RunStatus,
        question: dict[str, Any] | None = None,
    ) -> None:
        now = now_iso()
        await self.db.insert(
            "alim_run_records",
            {
                "run_id": run_id,
                "partner": owner.partner,
                "user_id": owner.user_id,
                "thread_key": thread_key,
                "thread_id": thread_id,
                "status": status,
                "created_at": now,
                "updated_at": now,
                "heartbeat_at": now,
                "question": json.dumps(question) if question is not None else None,
            },
        )

    async def get(self, run_id: str) -> RunInfo | None:
        row = await self.db.fetch_one("SELECT * FROM alim_run_records WHERE run_id = ?", (run_id,))
        return RunInfo.from_row(row) if row else None

    async def get_owned(self, owner: Owner, run_id: str) -> RunInfo | None:
        """The run, if it belongs to `owner` (anyone else: None, as for a missing run)."""
        info = await self.get(run_id)
        return info if info is not None and info.owner == owner else None

    async def set_status(
        self, run_id: str, status: RunStatus, question: dict[str, Any] | None = None
    ) -> None:
        await self.db.run(
            "UPDATE alim_run_records SET status = ?, updated_at = ?, "
            "question = COALESCE(?, question) WHERE run_id = ?",
            (status, now_iso(), json.dumps(question) if question is not None else None, run_id),
        )

    async def finish(
        self,
        run_id: str,
        status: RunStatus,
        *,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        only_if_unfinished: bool = False,
    ) -> bool:
        """Record the end of a run; False when `only_if_unfinished` and it had already ended."""
        now = now_iso()
        sql = (
            "UPDATE alim_run_records SET status = ?, updated_at = ?, finished_at = ?, "
            "result = ?, error = ? WHERE run_id = ?"
        )
        if only_if_unfinished:
            sql += " AND status NOT IN ('success', 'error', 'cancelled', 'interrupted')"
        row = await self.db.run(
            sql + " RETURNING run_id",
            (
                status,
                now,
                now,
                json.dumps(result, ensure_ascii=False) if result is not None else None,
                json.dumps(error, ensure_ascii=False) if error is not None else None,
                run_id,
            ),
            "one",
        )
        return row is not None

    async def heartbeat(self, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" for _ in run_ids)
        await self.db.run(
            f"UPDATE alim_run_records SET heartbeat_at = ? WHERE run_id IN ({marks})",
            (now_iso(), *run_ids),
        )

    async def request_cancel(self, run_id: str) -> None:
        await self.db.run(
            "UPDATE alim_run_records SET cancel_requested = 1, updated_at = ? WHERE run_id = ?",
            (now_iso(), run_id),
        )

    async def cancel_requested(self, run_ids: Sequence[str]) -> set[str]:
        """Those of `run_ids` another replica asked to cancel."""
        if not run_ids:
            return set()
        marks = ", ".join("?" for _ in run_ids)
        rows = await self.db.fetch_all(
            f"SELECT run_id FROM alim_run_records WHERE cancel_requested = 1 "
            f"AND run_id IN ({marks})",
            tuple(run_ids),
        )
        return {r["run_id"] for r in rows}

    async def unreconciled(self, lost_after: float, limit: int = 100) -> list[RunInfo]:
        """Runs that did not complete and whose thread was not reconciled yet: ended with an
        error or cancelled, or still marked running or pending by a process silent for more
        than `lost_after` seconds (killed)."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=lost_after)).isoformat()
        rows = await self.db.fetch_all(
            "SELECT * FROM alim_run_records WHERE reconciled_at IS NULL "
            "AND (status IN ('error', 'cancelled') "
            "OR (status IN ('running', 'pending') AND heartbeat_at < ?)) "
            "ORDER BY created_at LIMIT ?",
            (cutoff, limit),
        )
        return [RunInfo.from_row(r) for r in rows]

    async def mark_reconciled(self, run_id: str) -> None:
        await self.db.run(
            "UPDATE alim_run_records SET reconciled_at = ? WHERE run_id = ?", (now_iso(), run_id)
        )

    # ------------------------------------------------------------------ events
    async def append(self, run_id: str, events: Sequence[LoggedEvent]) -> None:
        """Append events (one statement per BATCH_ROWS); an event already logged is kept."""
        now = now_iso()
        for start in range(0, len(events), BATCH_ROWS):
            batch = events[start : start + BATCH_ROWS]
            values = ", ".join("(?, ?, ?, ?, ?)" for _ in batch)
            params: list[Any] = []
            for e in batch:
                params.extend((run_id, e.seq, e.event, e.data, now))
            await self.db.run(
                "INSERT INTO alim_run_events (run_id, seq, event, data, created_at) "
                f"VALUES {values} ON CONFLICT (run_id, seq) DO NOTHING",
                tuple(params),
            )

    async def events_after(self, run_id: str, seq: int, limit: int = 1000) -> list[LoggedEvent]:
        rows = await self.db.fetch_all(
            "SELECT seq, event, data FROM alim_run_events WHERE run_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (run_id, seq, limit),
        )
        return [LoggedEvent(int(r["seq"]), r["event"], r["data"]) for r in rows]

    async def last_seq(self, run_id: str) -> int:
        row = await self.db.fetch_one(
            "SELECT MAX(seq) AS seq FROM alim_run_events WHERE run_id = ?", (run_id,)
        )
        return int(row["seq"]) if row and row["seq"] is not None else 0

    # ------------------------------------------------------------------ idempotency
    async def claim_key(self, partner: str, key: str, request_hash: str) -> IdempotencyClaim:
        """Create the key's row, or read the one a first request created."""
        created = await self.db.run(
            "INSERT INTO alim_idempotency_keys (partner, key, request_hash, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (partner, key) DO NOTHING RETURNING key",
            (partner, key, request_hash, now_iso()),
            "one",
        )
        if created is not None:
            return IdempotencyClaim(True, request_hash, None)
        found = await self.key_row(partner, key)
        if found is None:  # released or pruned between the two statements: claim it again
            return await self.claim_key(partner, key, request_hash)
        return found

    async def bind_key(self, partner: str, key: str, run_id: str) -> None:
        await self.db.run(
            "UPDATE alim_idempotency_keys SET run_id = ? WHERE partner = ? AND key = ?",
            (run_id, partner, key),
        )

    async def key_row(self, partner: str, key: str) -> IdempotencyClaim | None:
        row = await self.db.fetch_one(
            "SELECT request_hash, run_id, status_code, response FROM alim_idempotency_keys "
            "WHERE partner = ? AND key = ?",
            (partner, key),
        )
        if row is None:
            return None
        return IdempotencyClaim(
            False,
            row["request_hash"],
            row["run_id"],
            row["status_code"],
            json.loads(row["response"]) if row["response"] is not None else None,
        )

    async def keep_response(self, partner: str, key: str, status_code: int, body: Any) -> None:
        await self.db.run(
            "UPDATE alim_idempotency_keys SET status_code = ?, response = ? "
            "WHERE partner = ? AND key = ?",
            (status_code, json.dumps(body, ensure_ascii=False), partner, key),
        )

    async def release_key(self, partner: str, key: str) -> None:
        """Forget a claim whose request started nothing (refused, or the thread was busy)."""
        await self.db.run(
            "DELETE FROM alim_idempotency_keys WHERE partner = ? AND key = ? "
            "AND run_id IS NULL AND response IS NULL",
            (partner, key),
        )

    # ------------------------------------------------------------------ retention
    async def prune(self, older_than_seconds: float) -> int:
        """Delete finished runs, their events and idempotency keys older than the TTL; a run
        still marked running that old lost its process long ago and goes too."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_seconds)).isoformat()
        rows = await self.db.fetch_all(
            "SELECT run_id FROM alim_run_records WHERE created_at < ?", (cutoff,)
        )
        async with self.db.transaction():
            await self.db.run(
                "DELETE FROM alim_run_events WHERE run_id IN "
                "(SELECT run_id FROM alim_run_records WHERE created_at < ?)",
                (cutoff,),
            )
            await self.db.run("DELETE FROM alim_run_records WHERE created_at < ?", (cutoff,))
            await self.db.run("DELETE FROM alim_idempotency_keys WHERE created_at < ?", (cutoff,))
        return len(rows)

    async def forget_thread(self, thread_key: str) -> None:
        """Delete a thread's runs and their events (their tokens are the thread's text)."""
        await self.db.run(
            "DELETE FROM alim_run_events WHERE run_id IN "
            "(SELECT run_id FROM alim_run_records WHERE thread_key = ?)",
            (thread_key,),
        )
        await self.db.run(
            "DELETE FROM alim_idempotency_keys WHERE run_id IN "
            "(SELECT run_id FROM alim_run_records WHERE thread_key = ?)",
            (thread_key,),
        )
        await self.db.run("DELETE FROM alim_run_records WHERE thread_key = ?", (thread_key,))
