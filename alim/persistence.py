"""Checkpointer + thread registry, opened together in one async context (never at import time).

- `sqlite` (default): `AsyncSqliteSaver` on `<data_dir>/alim.db`, registry in the same file.
- `postgres`: `AsyncPostgresSaver` on a psycopg pool (connection check, `prepare_threshold=None`),
  registry in the same database.
- `memory`: `InMemorySaver` and an in-memory SQLite registry (tests, throwaway runs).

`setup()` brings every ALİM store to its latest schema version (`alim.migrations`), one locked
transaction per store, so replicas starting together on one PostgreSQL apply each migration once.
On PostgreSQL the checkpointer's own setup runs under a session advisory lock for the same reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from alim.db import Database, PostgresDatabase, SqliteDatabase
from alim.errors import CheckpointerUnavailable
from alim.migrations import MigratedStore
from alim.settings import Settings
from alim.threads import ThreadRegistry

CHECKPOINTER_SETUP_LOCK = "alim:checkpointer-setup"


@dataclass
class Persistence:
    kind: str
    checkpointer: Any
    db: Database

    def __post_init__(self) -> None:
        self.threads = ThreadRegistry(self.db)

    def stores(self) -> list[MigratedStore]:
        """Every store whose tables live in this database, in set-up order."""
        from alim.analytics import Analytics
        from alim.assistants import AssistantStore
        from alim.handoff import EscalationStore
        from alim.keys import KeyStore
        from alim.knowledge.store import KnowledgeStore
        from alim.runs import RunStore
        from alim.webhooks import WebhookStore

        return [
            self.threads,
            KeyStore(self.db),
            EscalationStore(self.db),
            WebhookStore(self.db),
            Analytics(self.db),
            AssistantStore(self.db),
            RunStore(self.db),
            KnowledgeStore(self.db),
        ]

    async def setup(self) -> dict[str, list[int]]:
        """Create or upgrade the ALİM tables; the versions applied now, per store."""
        return {store.STORE: await store.setup() for store in self.stores()}

    async def forget_thread(self, key: str) -> None:
        """Delete a thread and every trace of its text outside the checkpoints (the caller
        deletes those): escalations cancelled and erased, feedback deleted, webhook payloads cut
        to ids, logged runs deleted, the registry row removed; in one transaction."""
        from alim.analytics import Analytics
        from alim.handoff import EscalationStore
        from alim.runs import RunStore
        from alim.webhooks import Outbox

        async with self.db.transaction():
            await EscalationStore(self.db).cancel_for_thread(key)
            await Analytics(self.db).forget_thread(key)
            await Outbox(self.db).forget_thread(key)
            await RunStore(self.db).forget_thread(key)
            await self.threads.delete(key)

    async def ping(self) -> None:
        """Raise CheckpointerUnavailable unless the store answers."""
        try:
            await self.db.ping()
        except Exception as exc:  # any driver error means "unreachable" to /ready
            raise CheckpointerUnavailable(f"{self.kind} store unreachable") from exc


@asynccontextmanager
async def open_persistence(settings: Settings) -> AsyncIterator[Persistence]:
    if settings.checkpointer == "postgres":
        async with _postgres(settings) as persistence:
            yield persistence
        return
    import aiosqlite

    if settings.checkpointer == "memory":
        from langgraph.checkpoint.memory import InMemorySaver

        async with aiosqlite.connect(":memory:", isolation_level=None) as conn:
            persistence = Persistence("memory", InMemorySaver(), SqliteDatabase(conn))
            await persistence.setup()
            yield persistence
        return

    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = str(settings.data_dir / "alim.db")
    async with (
        AsyncSqliteSaver.from_conn_string(path) as saver,
        aiosqlite.connect(path, isolation_level=None) as conn,
    ):
        await saver.setup()
        # WAL + synchronous=NORMAL: no fsync per commit; a process crash (kill -9) loses
        # nothing, a power loss may lose the last commits (never corrupts the file).
        await saver.conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA busy_timeout=5000")
        persistence = Persistence("sqlite", saver, SqliteDatabase(conn))
        await persistence.setup()
        yield persistence


def postgres_pool(url: str, *, max_size: int = 20, min_size: int = 1) -> Any:
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    return AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        timeout=3.0,  # an unreachable database answers 503 fast, not a hang
        check=AsyncConnectionPool.check_connection,
        kwargs={"autocommit": True, "prepare_threshold": None, "row_factory": dict_row},
    )


@asynccontextmanager
async def _postgres(settings: Settings) -> AsyncIterator[Persistence]:
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

    assert settings.postgres_url is not None
    pool = postgres_pool(
        settings.postgres_url.get_secret_value(), max_size=settings.postgres_pool_size
    )
    await pool.open(wait=True, timeout=10.0)
    try:
        saver = AsyncPostgresSaver(pool)
        db = PostgresDatabase(pool)
        # langgraph's setup has no lock of its own: two replicas starting together would both
        # create its tables and record its migrations.
        async with db.session_lock(CHECKPOINTER_SETUP_LOCK):
            await saver.setup()
        persistence = Persistence("postgres", saver, db)
        await persistence.setup()
        yield persistence
    finally:
        await pool.close()
