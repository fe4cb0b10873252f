"""The small SQL layer under the thread registry, the API keys and the other ALİM tables.

One interface, two back ends: SQLite (aiosqlite, the same file as the checkpoints) and PostgreSQL
(a psycopg pool, the same database as the checkpoints). SQL is written with `?` placeholders.
`run_lock(key)` is the per-thread run lock: in-process for SQLite, a session advisory lock for
Postgres (held across server processes, released by Postgres if the holder dies).
`locked_transaction(key)` is a transaction that holds a lock shared by every process on the
same database (schema migrations): `BEGIN IMMEDIATE` on SQLite, `pg_advisory_xact_lock` on
Postgres.

Typed helpers: `fetch_one` / `fetch_all` return rows as `dict[str, Any]`; `insert(table, row)`
names its columns from the same (column, value) pairs as its values.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import struct
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from alim.errors import ThreadBusy

Row = dict[str, Any]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _identifier(name: str) -> str:
    """Table and column names are code, never input: refuse anything but a plain identifier."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not an SQL identifier: {name!r}")
    return name


def insert_sql(table: str, columns: Iterable[str], suffix: str = "") -> str:
    """`INSERT INTO table (a, b) VALUES (?, ?)` (+ suffix, e.g. an ON CONFLICT clause)."""
    names = [_identifier(c) for c in columns]
    sql = (
        f"INSERT INTO {_identifier(table)} ({', '.join(names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    return f"{sql} {suffix}" if suffix else sql


class Database:
    placeholder = "?"
    kind = "sql"

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        """Execute; fetch="one" | "all" returns rows as dicts, else None (committed)."""
        raise NotImplementedError

    def sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    async def fetch_one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        row = await self.run(sql, params, "one")
        return dict(row) if row is not None else None

    async def fetch_all(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        return [dict(r) for r in await self.run(sql, params, "all")]

    async def insert(
        self,
        table: str,
        row: Mapping[str, Any] | Iterable[tuple[str, Any]],
        suffix: str = "",
    ) -> None:
        """Insert one row; the column list and the values come from the same pairs."""
        pairs = list(row.items() if isinstance(row, Mapping) else row)
        await self.run(
            insert_sql(table, (name for name, _ in pairs), suffix),
            tuple(value for _, value in pairs),
        )

    async def ping(self) -> None:
        await self.run("SELECT 1", (), "one")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Statements run inside the block commit together or not at all."""
        raise NotImplementedError
        yield  # pragma: no cover

    @asynccontextmanager
    async def locked_transaction(self, key: str) -> AsyncIterator[None]:
        """A transaction holding a lock (named `key`) that every process using this database
        respects until it commits: two of them never overlap."""
        raise NotImplementedError
        yield  # pragma: no cover

    @asynccontextmanager
    async def run_lock(self, key: str) -> AsyncIterator[None]:
        raise NotImplementedError
        yield  # pragma: no cover


class SqliteDatabase(Database):
    """One aiosqlite connection; an asyncio lock serialises statements so that a transaction
    never takes in another coroutine's writes.

    A statement is one trip to aiosqlite's thread (execute, fetch and close together). On a
    connection opened in autocommit mode (`isolation_level=None`, as `alim.persistence` opens
    it) a statement outside `transaction()` commits itself; on one in Python's default mode,
    each statement is committed after it (one more trip)."""

    kind = "sqlite"

    def __init__(self, connection: Any) -> None:
        import aiosqlite

        self.conn = connection
        self.conn.row_factory = aiosqlite.Row
        self._busy: set[str] = set()
        self._lock = asyncio.Lock()
        self._in_tx: ContextVar[bool] = ContextVar(f"sqlite_tx_{id(self)}", default=False)

    async def _execute(self, sql: str, params: tuple[Any, ...], fetch: str, commit: bool) -> Any:
        rows = await self.conn.execute_fetchall(self.sql(sql), params)
        if commit and self.conn.in_transaction:  # a connection someone left in a transaction
            await self.conn.commit()
        if fetch == "one":
            return dict(rows[0]) if rows else None
        if fetch == "all":
            return [dict(r) for r in rows]
        return None

    async def run(self, sql: str, params: tuple[Any, ...] = (), fetch: str = "") -> Any:
        if self._in_tx.get():
            return await self._execute(sql, params, fetch, commit=False)
        async with self._lock:
            return await self._execute(sql, params, fetch, commit=True)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self._transaction("BEGIN"):
            yield

    @asynccontextmanager
    async def locked_transaction(self, key: str) -> AsyncIterator[None]:
        # BEGIN IMMEDIATE takes the database's write lock at once: another process on the same
        # file waits (busy_timeout) instead of both reading, then failing to write.
        async with self._transaction("BEGIN IMMEDIATE"):
            yield

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[None]:
        if self._in_tx.get():
            yield
            return
        async with self._lock:
            token = self._in_tx.set(True)
            try:
                if self.conn.in_transaction:
                    await self.conn.commit()
                await self.conn.execute(begin)
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

    def __init__(self, pool: Any) -> None:
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
    async def locked_transaction(self, key: str) -> AsyncIterator[None]:
        async with self.transaction():
            # Released by Postgres at commit or rollback (or if the connection dies).
            await self.run("SELECT pg_advisory_xact_lock(?)", (advisory_key(key),))
            yield

    @asynccontextmanager
    async def session_lock(self, key: str, poll_seconds: float = 0.1) -> AsyncIterator[None]:
        """Wait for, then hold, a session advisory lock on a connection of its own (for work
        that cannot run inside one transaction, e.g. the checkpointer's own setup).

        Waits by polling `pg_try_advisory_lock`, never inside a blocked statement: the holder's
        work may be a `CREATE INDEX CONCURRENTLY`, which waits for every open transaction,
        a blocked `pg_advisory_lock` call included (a deadlock Postgres does not detect)."""
        lock_id = advisory_key(key)
        async with self.pool.connection() as conn:
            while True:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (lock_id,))
                row = await cur.fetchone()
                if row["ok"]:
                    break
                await asyncio.sleep(poll_seconds)
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.shield(conn.execute("SELECT pg_advisory_unlock(%s)", (lock_id,)))

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
