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
from datetime import UTC, datetime
from typing import Any

from alim.db import Database

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


def thread_key(owner: Owner, thread_id: str) -> str:
    raw = json.dumps([owner.partner, owner.user_id, thread_id], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:40]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_COLUMNS = "key, partner, user_id, thread_id, title, created_at, updated_at, message_count, status"
_SCHEMA = [
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


class ThreadRegistry:
    """Thread ownership and metadata, on an `alim.db.Database`."""

    def __init__(self, db: Database):
        self.db = db

    async def setup(self) -> None:
        for statement in _SCHEMA:
            await self.db.run(statement)

    async def get(self, owner: Owner, thread_id: str) -> ThreadInfo | None:
        row = await self.db.run(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE key = ?",
            (thread_key(owner, thread_id),),
            "one",
        )
        return ThreadInfo(**row) if row else None

    async def ensure(self, owner: Owner, thread_id: str, title: str) -> ThreadInfo:
        """The thread, created (with this title) if it does not exist yet."""
        now = _now()
        await self.db.run(
            "INSERT INTO alim_threads (key, partner, user_id, thread_id, title, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
            (
                thread_key(owner, thread_id),
                owner.partner,
                owner.user_id,
                thread_id,
                title[:TITLE_CHARS],
                now,
                now,
            ),
        )
        info = await self.get(owner, thread_id)
        assert info is not None
        return info

    async def record_messages(self, key: str, count: int) -> None:
        await self.db.run(
            "UPDATE alim_threads SET message_count = ?, updated_at = ? WHERE key = ?",
            (count, _now(), key),
        )

    async def set_status(self, key: str, status: str) -> None:
        await self.db.run("UPDATE alim_threads SET status = ? WHERE key = ?", (status, key))

    async def list(self, owner: Owner, limit: int = 100, offset: int = 0) -> list[ThreadInfo]:
        rows = await self.db.run(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE partner = ? AND user_id = ? "
            "ORDER BY updated_at DESC, key LIMIT ? OFFSET ?",
            (owner.partner, owner.user_id, limit, offset),
            "all",
        )
        return [ThreadInfo(**r) for r in rows]

    async def delete(self, key: str) -> None:
        await self.db.run("DELETE FROM alim_threads WHERE key = ?", (key,))

    def lock(self, key: str) -> Any:
        """Exclusive run lock on a thread (ThreadBusy if another run holds it)."""
        return self.db.run_lock(key)
