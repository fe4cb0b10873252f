"""The thread registry: who owns a thread, its title, times and message count, and the per-thread
run lock. Stored next to the checkpoints (same SQLite file or same Postgres database).

A thread is owned by (partner, user_id); the client's `thread_id` is only a name inside that
owner's space. The checkpoint thread id is derived from all three, so the same `thread_id` under
another key or another user is a different, empty thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from alim.errors import ThreadBusy

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
    """SQL shared by both back ends; subclasses provide `_run` and `lock`."""

    placeholder = "?"

    async def setup(self) -> None:
        for statement in _SCHEMA:
            await self._run(statement, ())

    async def _run(self, sql: str, params: tuple[Any, ...], fetch: str = "") -> Any:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    @staticmethod
    def _info(row: Any) -> ThreadInfo:
        return ThreadInfo(*row) if not isinstance(row, dict) else ThreadInfo(**row)

    async def get(self, owner: Owner, thread_id: str) -> ThreadInfo | None:
        row = await self._run(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE key = ?",
            (thread_key(owner, thread_id),),
            "one",
        )
        return self._info(row) if row else None

    async def ensure(self, owner: Owner, thread_id: str, title: str) -> ThreadInfo:
        """The thread, created (with this title) if it does not exist yet."""
        now = _now()
        await self._run(
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
        await self._run(
            "UPDATE alim_threads SET message_count = ?, updated_at = ? WHERE key = ?",
            (count, _now(), key),
        )

    async def set_status(self, key: str, status: str) -> None:
        await self._run("UPDATE alim_threads SET status = ? WHERE key = ?", (status, key))

    async def list(self, owner: Owner, limit: int = 100, offset: int = 0) -> list[ThreadInfo]:
        rows = await self._run(
            f"SELECT {_COLUMNS} FROM alim_threads WHERE partner = ? AND user_id = ? "
            "ORDER BY updated_at DESC, key LIMIT ? OFFSET ?",
            (owner.partner, owner.user_id, limit, offset),
            "all",
        )
        return [self._info(r) for r in rows]

    async def delete(self, key: str) -> None:
        await self._run("DELETE FROM alim_threads WHERE key = ?", (key,))

    async def ping(self) -> None:
        await self._run("SELECT 1", (), "one")

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover


class SqliteThreadRegistry(ThreadRegistry):
    """On an aiosqlite connection; the run lock is in-process (one server process per file)."""

    def __init__(self, connection: Any):
        self.conn = connection
        self._busy: set[str] = set()

    async def _run(self, sql: str, params: tuple[Any, ...], fetch: str = "") -> Any:
        cursor = await self.conn.execute(self._sql(sql), params)
        try:
            if fetch == "one":
                return await cursor.fetchone()
            if fetch == "all":
                return await cursor.fetchall()
            await self.conn.commit()
            return None
        finally:
            await cursor.close()

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        # Check-and-add has no await in between: atomic within the event loop.
        if key in self._busy:
            raise ThreadBusy("another run is in progress on this thread")
        self._busy.add(key)
        try:
            yield
        finally:
            self._busy.discard(key)


def advisory_key(key: str) -> int:
    """A signed 64-bit Postgres advisory-lock key for a thread."""
    return struct.unpack(">q", hashlib.sha256(key.encode()).digest()[:8])[0]


class PostgresThreadRegistry(ThreadRegistry):
    """On a psycopg pool; the run lock is a session advisory lock, so it holds across server
    processes and is released by Postgres if the holder dies."""

    placeholder = "%s"

    def __init__(self, pool: Any):
        self.pool = pool

    async def _run(self, sql: str, params: tuple[Any, ...], fetch: str = "") -> Any:
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(self._sql(sql), params)
            if fetch == "one":
                return await cur.fetchone()
            if fetch == "all":
                return await cur.fetchall()
            return None

    @asynccontextmanager
    async def lock(self, key: str) -> AsyncIterator[None]:
        lock_id = advisory_key(key)
        async with self.pool.connection() as conn:
            row = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (lock_id,))
            ).fetchone()
            ok = row["ok"] if isinstance(row, dict) else row[0]
            if not ok:
                raise ThreadBusy("another run is in progress on this thread")
            try:
                yield
            finally:
                try:
                    await asyncio.shield(conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,)))
                except Exception:  # the connection died: Postgres released the lock with it
                    pass
