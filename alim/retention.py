"""Data retention: delete idle threads with their checkpoints, prune old checkpoints of long ones.

- Threads whose last activity is older than `idle_days` are deleted everywhere (registry row and
  every checkpoint and pending write).
- `keep_latest` keeps only the newest checkpoint of each remaining thread: the conversation and
  the farm profile survive (they live in the latest state), the step-by-step history does not.
  Postgres uses the saver's own `aprune(strategy="keep_latest")`; SQLite has no such method, so
  the equivalent deletes run on the saver's connection. Busy threads are skipped, not waited for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from alim.errors import ThreadBusy

log = logging.getLogger(__name__)


@dataclass
class PruneReport:
    threads_deleted: int = 0
    threads_pruned: int = 0
    checkpoints_before: int = 0
    checkpoints_after: int = 0
    busy_skipped: int = 0


async def count_checkpoints(persistence: Any) -> int:
    saver = persistence.checkpointer
    if persistence.kind == "sqlite":
        async with saver.conn.execute("SELECT COUNT(*) FROM checkpoints") as cur:
            row = await cur.fetchone()
            return int(row[0])
    if persistence.kind == "postgres":
        row = await persistence.db.run("SELECT COUNT(*) AS n FROM checkpoints", (), "one")
        return int(row["n"])
    return sum(len(v) for ns in saver.storage.values() for v in ns.values())


async def _keep_latest_sqlite(saver: Any, key: str) -> None:
    async with saver.lock:
        await saver.conn.execute(
            """DELETE FROM writes WHERE thread_id = ? AND checkpoint_id NOT IN (
                   SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?
                   GROUP BY checkpoint_ns)""",
            (key, key),
        )
        await saver.conn.execute(
            """DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id NOT IN (
                   SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?
                   GROUP BY checkpoint_ns)""",
            (key, key),
        )
        await saver.conn.commit()


async def prune(
    persistence: Any, *, idle_days: float | None = None, keep_latest: bool = True
) -> PruneReport:
    report = PruneReport(checkpoints_before=await count_checkpoints(persistence))
    threads = persistence.threads
    rows = await persistence.db.run("SELECT key, updated_at FROM alim_threads", (), "all")
    cutoff = datetime.now(UTC) - timedelta(days=idle_days) if idle_days is not None else None
    for row in rows:
        key = row["key"]
        try:
            async with threads.lock(key):
                idle = cutoff is not None and datetime.fromisoformat(row["updated_at"]) < cutoff
                if idle:
                    await persistence.checkpointer.adelete_thread(key)
                    await persistence.forget_thread(key)
                    report.threads_deleted += 1
                elif keep_latest and persistence.kind == "postgres":
                    await persistence.checkpointer.aprune([key], strategy="keep_latest")
                    report.threads_pruned += 1
                elif keep_latest and persistence.kind == "sqlite":
                    await _keep_latest_sqlite(persistence.checkpointer, key)
                    report.threads_pruned += 1
        except ThreadBusy:
            report.busy_skipped += 1
    report.checkpoints_after = await count_checkpoints(persistence)
    log.info(
        "retention: %d idle threads deleted, %d pruned, checkpoints %d → %d",
        report.threads_deleted,
        report.threads_pruned,
        report.checkpoints_before,
        report.checkpoints_after,
    )
    return report
