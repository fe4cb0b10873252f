"""Escalations: questions the graph handed to a human agronomist.

When a turn escalates, the graph pauses in `await_human` (LangGraph `interrupt()`), the thread is
`awaiting_human`, and an escalation row records the question, the reason and the evidence the
graph had. An agent's reply resumes the graph (`Command(resume=…)`); the expert's answer becomes
the assistant message of that turn and the escalation is `resolved`. An agronomist may first
claim it (`claimed_by`, `claimed_at`): then no other agent can claim or answer it until the
claimer releases it or leaves it idle for the claim timeout (`ALIM_CLAIM_TIMEOUT`); an idle claim
lapses by itself, with no job to run. While a thread awaits a
human, new messages on it are stored in the thread and kept with the escalation (`followups`,
for the agronomist to read); the farmer gets an acknowledgement, no bot answer. An agent may
also close it without an answer (`closed`, with a `close_reason`). Every change stamps
`updated_at`, which the inbox's event stream follows.
"""

from __future__ import annotations

import builtins
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from alim.db import Database, Row
from alim.migrations import MigratedStore, Migration
from alim.timeutil import now_iso

Status = Literal["open", "resolved", "cancelled", "closed"]
CloseReason = Literal["duplicate", "spam", "not_farming"]
CLOSE_REASONS: tuple[CloseReason, ...] = ("duplicate", "spam", "not_farming")
KEPT_BY_EXPERT = "kept_by_expert"
"""The reason of an escalation an expert opened by keeping the conversation after answering."""
ERASED = "[deleted]"
_COLUMNS = (
    "id, partner, user_id, thread_id, thread_key, run_id, question, reason, confidence, "
    "sources, status, created_at, resolved_at, answer, agent_id, followups, claimed_by, "
    "claimed_at, updated_at, language, route, region, crops, close_reason, first_claimed_at, "
    "first_claimed_by"
)
# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_escalations (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        question TEXT NOT NULL,
        reason TEXT NOT NULL,
        confidence REAL,
        sources TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'open',
        created_at TEXT NOT NULL,
        resolved_at TEXT,
        answer TEXT,
        agent_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS alim_escalations_partner ON alim_escalations "
    "(partner, status, created_at)",
]
# Version 1: the farmer's messages sent while the escalation waits (a JSON list of texts).
_V1 = [
    "ALTER TABLE alim_escalations ADD COLUMN followups TEXT NOT NULL DEFAULT '[]'",
    "CREATE INDEX IF NOT EXISTS alim_escalations_thread ON alim_escalations (thread_key, status)",
]

# Version 2: the agent who claimed it, and when (the claim lapses after the claim timeout).
_V2 = [
    "ALTER TABLE alim_escalations ADD COLUMN claimed_by TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN claimed_at TEXT",
]

# Version 3: the inbox. When it last changed (the event stream's cursor), what the queue shows
# and filters on (language, route, the farm's region and crops), why it was closed unanswered,
# and its first claim (time-to-claim analytics).
_V3 = [
    "ALTER TABLE alim_escalations ADD COLUMN updated_at TEXT",
    "UPDATE alim_escalations SET updated_at = COALESCE(resolved_at, claimed_at, created_at)",
    "ALTER TABLE alim_escalations ADD COLUMN language TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN route TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN region TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN crops TEXT NOT NULL DEFAULT '[]'",
    "ALTER TABLE alim_escalations ADD COLUMN close_reason TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN first_claimed_at TEXT",
    "ALTER TABLE alim_escalations ADD COLUMN first_claimed_by TEXT",
    "CREATE INDEX IF NOT EXISTS alim_escalations_updated ON alim_escalations (partner, updated_at)",
]


@dataclass
class Escalation:
    id: str
    partner: str
    user_id: str
    thread_id: str
    thread_key: str
    run_id: str
    question: str
    reason: str
    confidence: float | None
    sources: list[dict[str, Any]] = field(default_factory=list)
    status: str = "open"
    created_at: str = ""
    resolved_at: str | None = None
    answer: str | None = None
    agent_id: str | None = None
    followups: list[str] = field(default_factory=list)
    """What the farmer wrote while waiting, oldest first."""
    claimed_by: str | None = None
    claimed_at: str | None = None
    updated_at: str = ""
    language: str | None = None
    route: str | None = None
    region: str | None = None
    crops: list[str] = field(default_factory=list)
    close_reason: str | None = None
    first_claimed_at: str | None = None
    first_claimed_by: str | None = None

    def holder(self, stale_before: str) -> str | None:
        """The agent whose claim still holds (claimed at or after `stale_before`), if any."""
        if self.status != "open" or self.claimed_by is None or self.claimed_at is None:
            return None
        return self.claimed_by if self.claimed_at >= stale_before else None

    @classmethod
    def from_row(cls, row: Row) -> Escalation:
        confidence = row["confidence"]
        return cls(
            id=row["id"],
            partner=row["partner"],
            user_id=row["user_id"],
            thread_id=row["thread_id"],
            thread_key=row["thread_key"],
            run_id=row["run_id"],
            question=row["question"],
            reason=row["reason"],
            confidence=float(confidence) if confidence is not None else None,
            sources=json.loads(row["sources"] or "[]"),
            status=row["status"],
            created_at=row["created_at"],
            resolved_at=row["resolved_at"],
            answer=row["answer"],
            agent_id=row["agent_id"],
            followups=json.loads(row["followups"] or "[]"),
            claimed_by=row["claimed_by"],
            claimed_at=row["claimed_at"],
            updated_at=row["updated_at"] or row["created_at"],
            language=row["language"],
            route=row["route"],
            region=row["region"],
            crops=json.loads(row["crops"] or "[]"),
            close_reason=row["close_reason"],
            first_claimed_at=row["first_claimed_at"],
            first_claimed_by=row["first_claimed_by"],
        )


class EscalationStore(MigratedStore):
    STORE: ClassVar[str] = "escalations"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0, _V1, _V2, _V3]

    def __init__(self, db: Database) -> None:
        self.db = db

    async def open_for_thread(self, thread_key: str) -> Escalation | None:
        """The thread's open escalation, if it has one."""
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM alim_escalations WHERE thread_key = ? AND status = 'open' "
            "ORDER BY created_at DESC LIMIT 1",
            (thread_key,),
        )
        return Escalation.from_row(row) if row else None

    async def add_followup(self, escalation_id: str, text: str) -> None:
        """Keep a message the farmer sent while waiting (call inside a transaction)."""
        row = await self.db.fetch_one(
            "SELECT followups FROM alim_escalations WHERE id = ?", (escalation_id,)
        )
        followups = [*json.loads((row or {}).get("followups") or "[]"), text]
        await self.db.run(
            "UPDATE alim_escalations SET followups = ?, updated_at = ? WHERE id = ?",
            (json.dumps(followups, ensure_ascii=False), now_iso(), escalation_id),
        )

    async def open(
        self,
        *,
        partner: str,
        user_id: str,
        thread_id: str,
        thread_key: str,
        run_id: str,
        question: str,
        reason: str,
        confidence: float | None,
        sources: list[dict[str, Any]],
        language: str | None = None,
        route: str | None = None,
        region: str | None = None,
        crops: list[str] | None = None,
    ) -> Escalation:
        created = now_iso()
        esc = Escalation(
            id=f"esc_{uuid.uuid4().hex[:16]}",
            partner=partner,
            user_id=user_id,
            thread_id=thread_id,
            thread_key=thread_key,
            run_id=run_id,
            question=question,
            reason=reason,
            confidence=confidence,
            sources=sources,
            created_at=created,
            updated_at=created,
            language=language,
            route=route,
            region=region,
            crops=list(crops or []),
        )
        await self.db.insert(
            "alim_escalations",
            {
                "id": esc.id,
                "partner": esc.partner,
                "user_id": esc.user_id,
                "thread_id": esc.thread_id,
                "thread_key": esc.thread_key,
                "run_id": esc.run_id,
                "question": esc.question,
                "reason": esc.reason,
                "confidence": esc.confidence,
                "sources": json.dumps(esc.sources, ensure_ascii=False),
                "status": esc.status,
                "created_at": esc.created_at,
                "updated_at": esc.updated_at,
                "language": esc.language,
                "route": esc.route,
                "region": esc.region,
                "crops": json.dumps(esc.crops, ensure_ascii=False),
            },
        )
        return esc

    async def get(self, partner: str, escalation_id: str) -> Escalation | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM alim_escalations WHERE id = ? AND partner = ?",
            (escalation_id, partner),
        )
        return Escalation.from_row(row) if row else None

    async def list(
        self, partner: str, status: Status | None = None, limit: int = 100, offset: int = 0
    ) -> list[Escalation]:
        sql = f"SELECT {_COLUMNS} FROM alim_escalations WHERE partner = ?"
        params: tuple[Any, ...] = (partner,)
        if status is not None:
            sql += " AND status = ?"
            params += (status,)
        rows = await self.db.fetch_all(
            sql + " ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [Escalation.from_row(r) for r in rows]

    async def cancel_for_thread(self, thread_key: str) -> None:
        """The thread is gone (deleted, or expired by retention): close its open escalations
        and erase the conversation text they kept (question, answer)."""
        await self.db.run(
            "UPDATE alim_escalations SET status = 'cancelled', resolved_at = ?, updated_at = ? "
            "WHERE thread_key = ? AND status = 'open'",
            (now_iso(), now_iso(), thread_key),
        )
        await self.db.run(
            "UPDATE alim_escalations SET question = ?, answer = NULL, followups = '[]' "
            "WHERE thread_key = ?",
            (ERASED, thread_key),
        )

    async def claim(
        self, partner: str, escalation_id: str, agent_id: str, stale_before: str
    ) -> bool:
        """Claim it for `agent_id` (or renew that agent's claim) unless another agent's claim
        still holds or it is no longer open; whether it is now this agent's. One statement, so
        two agents claiming at once cannot both win."""
        now = now_iso()
        row = await self.db.run(
            "UPDATE alim_escalations SET claimed_by = ?, claimed_at = ?, updated_at = ?, "
            "first_claimed_at = COALESCE(first_claimed_at, ?), "
            "first_claimed_by = COALESCE(first_claimed_by, ?) "
            "WHERE id = ? AND partner = ? AND status = 'open' "
            "AND (claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?) RETURNING id",
            (agent_id, now, now, now, agent_id, escalation_id, partner, agent_id, stale_before),
            "one",
        )
        return row is not None

    async def release(self, escalation_id: str) -> None:
        await self.db.run(
            "UPDATE alim_escalations SET claimed_by = NULL, claimed_at = NULL, updated_at = ? "
            "WHERE id = ?",
            (now_iso(), escalation_id),
        )

    async def resolve(self, escalation_id: str, answer: str, agent_id: str) -> None:
        now = now_iso()
        await self.db.run(
            "UPDATE alim_escalations SET status = 'resolved', resolved_at = ?, updated_at = ?, "
            "answer = ?, agent_id = ? WHERE id = ?",
            (now, now, answer, agent_id, escalation_id),
        )

    async def close(self, escalation_id: str, reason: CloseReason, agent_id: str) -> None:
        """Closed without an answer (the farmer gets a polite notice instead)."""
        now = now_iso()
        await self.db.run(
            "UPDATE alim_escalations SET status = 'closed', resolved_at = ?, updated_at = ?, "
            "close_reason = ?, agent_id = ? WHERE id = ?",
            (now, now, reason, agent_id, escalation_id),
        )

    async def queue(
        self,
        partner: str,
        *,
        reason: str | None = None,
        language: str | None = None,
        region: str | None = None,
        limit: int = 200,
    ) -> builtins.list[Escalation]:
        """Open escalations, oldest first (the one waiting longest leads), filtered."""
        sql = f"SELECT {_COLUMNS} FROM alim_escalations WHERE partner = ? AND status = 'open'"
        params: tuple[Any, ...] = (partner,)
        for column, value in (("reason", reason), ("language", language), ("region", region)):
            if value is not None:
                sql += f" AND {column} = ?"
                params += (value,)
        rows = await self.db.fetch_all(sql + " ORDER BY created_at, id LIMIT ?", (*params, limit))
        return [Escalation.from_row(r) for r in rows]

    async def changed_since(
        self, partner: str, since: str, limit: int = 500
    ) -> builtins.list[Escalation]:
        """Escalations changed at or after `since` (an `updated_at`), oldest change first."""
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM alim_escalations WHERE partner = ? AND updated_at >= ? "
            "ORDER BY updated_at, id LIMIT ?",
            (partner, since, limit),
        )
        return [Escalation.from_row(r) for r in rows]

    async def timings(self, partner: str, since: str, until: str) -> builtins.list[Row]:
        """Created, first-claimed and answered times (with who) of escalations created in
        [since, until): the hand-off analytics' raw material."""
        return await self.db.fetch_all(
            "SELECT created_at, first_claimed_at, first_claimed_by, resolved_at, agent_id, "
            "status, reason FROM alim_escalations WHERE partner = ? AND created_at >= ? "
            "AND created_at < ? ORDER BY created_at",
            (partner, since, until),
        )
