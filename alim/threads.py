"""The thread registry: who owns a thread, its title, times and message count, and the per-thread
run lock. Stored next to the checkpoints (same SQLite file or same Postgres database).

A thread is owned by (partner, user_id); the client's `thread_id` is only a name inside that
owner's space. The checkpoint thread id is derived from all three, so the same `thread_id` under
another key or another user is a different, empty thread.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from alim.db import Database, Row, insert_sql
from alim.migrations import MigratedStore, Migration
from alim.timeutil import now_iso

TITLE_CHARS = 80


@dataclass(frozen=True)
class Owner:
    partner: str
    user_id: str


@dataclass(frozen=True)
class ThreadInfo:
    key: str
    """The checkpoint thread id (derived, never shown to clients)."""
    partner: str
    user_id: str
    thread_id: str
    title: str
    created_at: str
    updated_at: str
    message_count: int
    status: str = "active"

    @classmethod
    def from_row(cls, row: Row) -> ThreadInfo:
        return cls(
            key=str(row["key"]),
            partner=str(row["partner"]),
            user_id=str(row["user_id"]),
            thread_id=str(row["thread_id"]),
            title=str(row["title"]),
            created_at=str(row["created_at"]),
            updated_at=str(row["updated_at"]),
            message_count=int(row["message_count"]),
            status=str(row["status"]),
        )


def thread_key(owner: Owner, thread_id: str) -> str:
    raw = json.dumps([owner.partner, owner.user_id, thread_id], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


_COLUMNS = "key, partner, user_id, thread_id, title, created_at, updated_at, message_count, status"
# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_threads (
        key TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        title TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL DEFAULT 'active'
    )""",
    "CREATE INDEX IF NOT EXISTS alim_threads_owner ON alim_threads (partner, user_id, updated_at)",
]


class ThreadRegistry(MigratedStore):
    """Thread ownership and metadata, on an `alim.db.Database`."""

    STORE: ClassVar[str] = "threads"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0]

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, owner: Owner, thread_id: str) -> ThreadInfo | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE key = ?",
            (thread_key(owner, thread_id),),
        )
        return ThreadInfo.from_row(row) if row else None

    async def ensure(self, owner: Owner, thread_id: str, title: str) -> ThreadInfo:
        """The thread, created (with this title) if it does not exist yet."""
        now = now_iso()
        row = {
            "key": thread_key(owner, thread_id),
            "partner": owner.partner,
            "user_id": owner.user_id,
            "thread_id": thread_id,
            "title": title[:TITLE_CHARS],
            "created_at": now,
            "updated_at": now,
        }
        created = await self.db.run(
            insert_sql("alim_threads", row, f"ON CONFLICT (key) DO NOTHING RETURNING {_COLUMNS}"),
            tuple(row.values()),
            fetch="one",
        )
        info = ThreadInfo.from_row(created) if created else await self.get(owner, thread_id)
        assert info is not None
        return info

    async def record_messages(self, key: str, count: int) -> None:
        await self.db.run(
            "UPDATE alim_threads SET message_count = ?, updated_at = ? WHERE key = ?",
            (count, now_iso(), key),
        )

    async def set_status(self, key: str, status: str) -> None:
        await self.db.run("UPDATE alim_threads SET status = ? WHERE key = ?", (status, key))

    async def list(self, owner: Owner, limit: int = 100, offset: int = 0) -> list[ThreadInfo]:
        rows = await self.db.fetch_all(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE partner = ? AND user_id = ? "
            "ORDER BY updated_at DESC, key LIMIT ? OFFSET ?",
            (owner.partner, owner.user_id, limit, offset),
        )
        return [ThreadInfo.from_row(r) for r in rows]

    async def delete(self, key: str) -> None:
        await self.db.run("DELETE FROM alim_threads WHERE key = ?", (key,))

    def lock(self, key: str) -> Any:
        """Exclusive run lock on a thread (ThreadBusy if another run holds it)."""
        return self.db.run_lock(key)
