"""Run analytics (one row per run, written by the engine) and user feedback.

`report()` answers `GET /api/v1/analytics` as seed 002 shapes it: period, metrics
(total_conversations, messages, ai_resolved, escalated, resolution_rate, avg_response_time,
p95_response_time, customer_satisfaction, routes) and a per-period breakdown (day | week | month).
"""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from alim.db import Database

GroupBy = Literal["day", "week", "month"]
_SCHEMA = [
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


class Analytics:
    def __init__(self, db: Database):
        self.db = db

    async def setup(self) -> None:
        for statement in _SCHEMA:
            await self.db.run(statement)

    async def record_run(self, **row: Any) -> None:
        row.setdefault("created_at", datetime.now(UTC).isoformat(timespec="milliseconds"))
        row["escalated"] = int(bool(row.get("escalated")))
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        await self.db.run(
            f"INSERT INTO alim_runs ({columns}) VALUES ({marks})", tuple(row.values())
        )

    async def run_exists(self, partner: str, thread_key: str, run_id: str) -> bool:
        row = await self.db.run(
            "SELECT run_id FROM alim_runs WHERE run_id = ? AND partner = ? AND thread_key = ?",
            (run_id, partner, thread_key),
            "one",
        )
        return row is not None

    async def add_feedback(
        self, partner: str, thread_key: str, run_id: str, score: int, comment: str | None
    ) -> dict[str, Any]:
        record = {
            "id": f"fb_{uuid.uuid4().hex[:16]}",
            "partner": partner,
            "thread_key": thread_key,
            "run_id": run_id,
            "score": score,
            "comment": comment,
            "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        }
        await self.db.run(
            "INSERT INTO alim_feedback (id, partner, thread_key, run_id, score, comment, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            tuple(record.values()),
        )
        return record

    async def report(
        self, partner: str, start: date, end: date, group_by: GroupBy = "day"
    ) -> dict[str, Any]:
        lo = datetime.combine(start, datetime.min.time(), UTC).isoformat()
        hi = datetime.combine(end + timedelta(days=1), datetime.min.time(), UTC).isoformat()
        runs = await self.db.run(
            "SELECT thread_key, route, escalated, outcome, latency_ms, created_at FROM alim_runs "
            "WHERE partner = ? AND created_at >= ? AND created_at < ?",
            (partner, lo, hi),
            "all",
        )
        feedback = await self.db.run(
            "SELECT score, created_at FROM alim_feedback WHERE partner = ? AND created_at >= ? "
            "AND created_at < ?",
            (partner, lo, hi),
            "all",
        )
        buckets: dict[str, list[dict[str, Any]]] = defaultdict(list)
        ratings: dict[str, list[dict[str, Any]]] = defaultdict(list)
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


def _summary(runs: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> dict[str, Any]:
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
