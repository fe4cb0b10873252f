"""Run analytics (one row per run, written by the engine) and user feedback.

`report()` answers `GET /api/v1/analytics` as seed 002 shapes it: period, metrics
(total_conversations, messages, ai_resolved, escalated, resolution_rate, avg_response_time,
p95_response_time, customer_satisfaction, routes) and a per-period breakdown (day | week | month).

Runs hold ids, codes and numbers only (no conversation text); feedback holds the user's free-text
comment, so `forget_thread()` deletes a thread's feedback with the thread.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from typing_extensions import TypedDict

from alim.db import Database
from alim.migrations import MigratedStore, Migration
from alim.timeutil import now_iso

GroupBy = Literal["day", "week", "month"]
# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_runs (
        run_id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        route TEXT,
        confidence REAL,
        escalated INTEGER NOT NULL DEFAULT 0,
        escalation_reason TEXT,
        outcome TEXT NOT NULL,
        latency_ms REAL NOT NULL,
        ttft_ms REAL,
        tokens INTEGER,
        model TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alim_runs_partner ON alim_runs (partner, created_at)",
    """CREATE TABLE IF NOT EXISTS alim_feedback (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        score INTEGER NOT NULL,
        comment TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alim_feedback_partner ON alim_feedback (partner, created_at)",
]


class Feedback(TypedDict):
    """One stored rating."""

    id: str
    partner: str
    thread_key: str
    run_id: str
    score: int
    comment: str | None
    created_at: str


class _RunRow(TypedDict):
    thread_key: str
    route: str | None
    escalated: int
    outcome: str
    latency_ms: float
    created_at: str


class _ScoreRow(TypedDict):
    score: int
    created_at: str


class Analytics(MigratedStore):
    STORE: ClassVar[str] = "analytics"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0]

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_run(
        self,
        *,
        run_id: str,
        partner: str,
        user_id: str,
        thread_id: str,
        thread_key: str,
        outcome: str,
        latency_ms: float,
        route: str | None = None,
        confidence: float | None = None,
        escalated: bool = False,
        escalation_reason: str | None = None,
        ttft_ms: float | None = None,
        tokens: int | None = None,
        model: str | None = None,
        created_at: str | None = None,
    ) -> None:
        await self.db.insert(
            "alim_runs",
            {
                "run_id": run_id,
                "partner": partner,
                "user_id": user_id,
                "thread_id": thread_id,
                "thread_key": thread_key,
                "route": route,
                "confidence": confidence,
                "escalated": int(bool(escalated)),
                "escalation_reason": escalation_reason,
                "outcome": outcome,
                "latency_ms": latency_ms,
                "ttft_ms": ttft_ms,
                "tokens": tokens,
                "model": model,
                "created_at": created_at or now_iso(),
            },
        )

    async def run_exists(self, partner: str, thread_key: str, run_id: str) -> bool:
        row = await self.db.fetch_one(
            "SELECT run_id FROM alim_runs WHERE run_id = ? AND partner = ? AND thread_key = ?",
            (run_id, partner, thread_key),
        )
        return row is not None

    async def add_feedback(
        self, partner: str, thread_key: str, run_id: str, score: int, comment: str | None
    ) -> Feedback:
        record = Feedback(
            id=f"fb_{uuid.uuid4().hex[:16]}",
            partner=partner,
            thread_key=thread_key,
            run_id=run_id,
            score=score,
            comment=comment,
            created_at=now_iso(),
        )
        await self.db.insert("alim_feedback", record)
        return record

    async def feedback(self, partner: str, thread_key: str) -> list[Feedback]:
        """A thread's ratings, oldest first."""
        rows = await self.db.fetch_all(
            "SELECT id, partner, thread_key, run_id, score, comment, created_at FROM alim_feedback "
            "WHERE partner = ? AND thread_key = ? ORDER BY created_at, id",
            (partner, thread_key),
        )
        return [
            Feedback(
                id=r["id"],
                partner=r["partner"],
                thread_key=r["thread_key"],
                run_id=r["run_id"],
                score=int(r["score"]),
                comment=r["comment"],
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def forget_thread(self, thread_key: str) -> int:
        """The thread is gone (deleted, or expired by retention): delete its feedback, the only
        free text analytics keeps (runs hold ids, codes and numbers, and stay for the totals).
        Its runs move to a key of their own (one per deleted conversation, so the totals still
        count it once): a new thread under the same id does not inherit them. Returns how many
        ratings were deleted. Call in the transaction that deletes the thread."""
        deleted = await self.db.fetch_all(
            "DELETE FROM alim_feedback WHERE thread_key = ? RETURNING id", (thread_key,)
        )
        await self.db.run(
            "UPDATE alim_runs SET thread_key = ? WHERE thread_key = ?",
            (f"{thread_key}#deleted-{uuid.uuid4().hex[:12]}", thread_key),
        )
        return len(deleted)

    async def report(
        self, partner: str, start: date, end: date, group_by: GroupBy = "day"
    ) -> dict[str, Any]:
        lo = datetime.combine(start, datetime.min.time(), UTC).isoformat()
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).isoformat()
        runs = [
            _RunRow(
                thread_key=r["thread_key"],
                route=r["route"],
                escalated=int(r["escalated"]),
                outcome=r["outcome"],
                latency_ms=float(r["latency_ms"]),
                created_at=r["created_at"],
            )
            for r in await self.db.fetch_all(
                "SELECT thread_key, route, escalated, outcome, latency_ms, created_at "
                "FROM alim_runs WHERE partner = ? AND created_at >= ? AND created_at < ?",
                (partner, lo, hi),
            )
        ]
        feedback = [
            _ScoreRow(score=int(r["score"]), created_at=r["created_at"])
            for r in await self.db.fetch_all(
                "SELECT score, created_at FROM alim_feedback WHERE partner = ? "
                "AND created_at >= ? AND created_at < ?",
                (partner, lo, hi),
            )
        ]
        buckets: dict[str, list[_RunRow]] = defaultdict(list)
        ratings: dict[str, list[_ScoreRow]] = defaultdict(list)
        for r in runs:
            buckets[_period(r["created_at"], group_by)].append(r)
        for f in feedback:
            ratings[_period(f["created_at"], group_by)].append(f)
        breakdown = [
            {"period": period, **_summary(buckets[period], ratings[period])}
            for period in sorted(set(buckets) | set(ratings))
        ]
        report: dict[str, Any] = {
            "period": {"start": start.isoformat(), "end": end.isoformat(), "group_by": group_by},
            "metrics": _summary(runs, feedback),
            "breakdown": breakdown,
        }
        if group_by == "day":  # the shape of seed 002
            report["daily_breakdown"] = [
                {
                    "date": row["period"],
                    "conversations": row["total_conversations"],
                    "resolution_rate": row["resolution_rate"],
                }
                for row in breakdown
            ]
        return report


def _period(created_at: str, group_by: GroupBy) -> str:
    day = datetime.fromisoformat(created_at).date()
    if group_by == "week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if group_by == "month":
        return day.strftime("%Y-%m")
    return day.isoformat()


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _summary(runs: list[_RunRow], feedback: list[_ScoreRow]) -> dict[str, Any]:
    answered = [r for r in runs if r["outcome"] == "ok"]
    escalated = sum(1 for r in answered if r["escalated"])
    latencies = [r["latency_ms"] / 1000 for r in answered]
    resolved = len(answered) - escalated
    scores = [f["score"] for f in feedback]
    return {
        "total_conversations": len({r["thread_key"] for r in runs}),
        "messages": len(runs),
        "ai_resolved": resolved,
        "escalated": escalated,
        "resolution_rate": round(resolved / len(answered), 3) if answered else None,
        "avg_response_time": round(sum(latencies) / len(latencies), 3) if latencies else None,
        "p95_response_time": round(p, 3) if (p := _p95(latencies)) is not None else None,
        "customer_satisfaction": round(sum(scores) / len(scores), 2) if scores else None,
        "routes": dict(Counter(r["route"] or "unknown" for r in runs)),
    }
