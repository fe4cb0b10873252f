"""The small SQL layer under the thread registry, the API keys and the other ALİM tables.

One interface, two back ends: SQLite (aiosqlite, the same file as the checkpoints) and PostgreSQL
(a psycopg pool, the same database as the checkpoints). SQL is written with `?` placeholders.
`run_lock(key)` is the per-thread run lock: in-process for SQLite, a session advisory lock for
Postgres (held across server processes, released by Postgres if the holder dies).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from alim.errors import ThreadBusy


class Database:
    placeholder = "?"
    kind = "sql"

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        """Execute; fetch="one" | "all" returns rows as dicts, else None (committed)."""
        raise NotImplementedError

    def sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    async def ping(self) -> None:
        await self.run("SELECT 1", (), "one")

    @asynccontextmanager
    async def run_lock(self, key: str) -> AsyncIterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover


class SqliteDatabase(Database):
    kind = "sqlite"

    def __init__(self, connection: Any):
        import aiosqlite

        self.conn = connection
        self.conn.row_factory = aiosqlite.Row
        self._busy: set[str] = set()

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        cursor = await self.conn.execute(self.sql(sql), params)
        try:
            if fetch == "one":
                row = await cursor.fetchone()
                return dict(row) if row is not None else None
            if fetch == "all":
                return [dict(r) for r in await cursor.fetchall()]
            await self.conn.commit()
            return None
        finally:
            await cursor.close()

    @asynccontextmanager
    async def run_lock(self, key: str) -> AsyncIterator[None]:
        # Check-and-add has no await in between: atomic within the event loop.
        if key in self._busy:
            raise ThreadBusy("another run is in progress on this thread")
        self._busy.add(key)
        try:
            yield
        finally:
            self._busy.discard(key)


def advisory_key(key: str) -> int:
    """A signed 64-bit Postgres advisory-lock key."""
    return int(struct.unpack(">q", hashlib.sha256(key.encode()).digest()[:8])[0])


class PostgresDatabase(Database):
    placeholder = "%s"
    kind = "postgres"

    def __init__(self, pool: Any):
        self.pool = pool

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.execute(self.sql(sql), params)
            if fetch == "one":
                return await cur.fetchone()
            if fetch == "all":
                return await cur.fetchall()
            return None

    @asynccontextmanager
    async def run_lock(self, key: str) -> AsyncIterator[None]:
        lock_id = advisory_key(key)
        async with self.pool.connection() as conn:
            cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (lock_id,))
            row = await cur.fetchone()
            if not row["ok"]:
                raise ThreadBusy("another run is in progress on this thread")
            try:
                yield
            finally:
                # If the connection died, Postgres released the lock with it.
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,)))
