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
from contextvars import ContextVar
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
    async def transaction(self) -> AsyncIterator[None]:
        """Statements run inside the block commit together or not at all."""
        raise NotImplementedError
        yield  # pragma: no cover

    @asynccontextmanager
    async def run_lock(self, key: str) -> AsyncIterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover


class SqliteDatabase(Database):
    """One aiosqlite connection; an asyncio lock serialises statements so that a transaction
    never takes in another coroutine's writes."""

    kind = "sqlite"

    def __init__(self, connection: Any):
        import aiosqlite

        self.conn = connection
        self.conn.row_factory = aiosqlite.Row
        self._busy: set[str] = set()
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"sqlite_tx_{id(self)}", default=False)

    async def _execute(self, sql: str, params: tuple[Any, ...], fetch: str, commit: bool) -> Any:
        cursor = await self.conn.execute(self.sql(sql), params)
        try:
            if fetch == "one":
                row = await cursor.fetchone()
                result: Any = dict(row) if row is not None else None
            elif fetch == "all":
                result = [dict(r) for r in await cursor.fetchall()]
            else:
                result = None
            if commit and self.conn.in_transaction:
                await self.conn.commit()
            return result
        finally:
            await cursor.close()

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        if self._in_tx.get():
            return await self._execute(sql, params, fetch, commit=False)
        async with self._lock:
            return await self._execute(sql, params, fetch, commit=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            try:
                if self.conn.in_transaction:
                    await self.conn.commit()
                await self.conn.execute("BEGIN")
                yield
                await self.conn.commit()
            except BaseException:
                await self.conn.rollback()
                raise
            finally:
                self._in_tx.reset(token)

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
        self._tx_conn: ContextVar[Any] = ContextVar(f"pg_tx_{id(self)}", default=None)

    @staticmethod
    async def _execute(conn: Any, sql: str, params: tuple[Any, ...], fetch: str) -> Any:
        async with conn.cursor() as cur:
            await cur.execute(sql, params)
            if fetch == "one":
                return await cur.fetchone()
            if fetch == "all":
                return await cur.fetchall()
            return None

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        conn = self._tx_conn.get()
        if conn is not None:
            return await self._execute(conn, self.sql(sql), params, fetch)
        async with self.pool.connection() as conn:
            return await self._execute(conn, self.sql(sql), params, fetch)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self._tx_conn.get() is not None:
            yield
            return
        async with self.pool.connection() as conn, conn.transaction():
            token = self._tx_conn.set(conn)
            try:
                yield
            finally:
                self._tx_conn.reset(token)

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
