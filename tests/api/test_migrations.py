"""Schema migrations against the real back ends: a database created by the code from before
versions existed (its `CREATE TABLE` statements run here, no version table) is upgraded by
`Persistence.setup()` with its rows intact; a second setup applies nothing; replicas starting
together on one PostgreSQL (two pools) apply each migration exactly once.

PostgreSQL tests run in a schema of their own (dropped afterwards) inside the session's database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import aiosqlite
import pytest

from alim.analytics import Analytics
from alim.db import Database, PostgresDatabase, SqliteDatabase
from alim.handoff import EscalationStore
from alim.keys import KeyStore
from alim.migrations import Migration
from alim.persistence import Persistence, open_persistence, postgres_pool
from alim.threads import Owner, ThreadRegistry, thread_key
from alim.webhooks import Outbox, WebhookStore
from tests.conftest import make_settings
from tests.unit.test_migrations import LEGACY_SCHEMA, STORE_CLASSES, columns

OPEN = Callable[[], AbstractAsyncContextManager[Database]]
OWNER = Owner("acme", "farmer-1")
KEY = thread_key(OWNER, "legacy-thread")
LATEST = {store: list(range(len(cls.MIGRATIONS))) for store, cls in STORE_CLASSES.items()}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def pg_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A URL whose connections use a fresh, empty schema of the session's test database."""
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    schema = f"alim_mig_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{base}?options={quote(f'-c search_path={schema}')}"
    finally:
        async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def open_db(store_backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> OPEN:
    """Opens a connection (SQLite file) or a pool (PostgreSQL schema) on one database."""
    url = request.getfixturevalue("pg_url") if store_backend == "postgres" else ""

    @asynccontextmanager
    async def opener() -> AsyncIterator[Database]:
        if store_backend == "postgres":
            pool = postgres_pool(url, max_size=4)
            await pool.open(wait=True, timeout=10.0)
            try:
                yield PostgresDatabase(pool)
            finally:
                await pool.close()
            return
        async with aiosqlite.connect(str(tmp_path / "alim.db")) as conn:
            await conn.execute("PRAGMA busy_timeout=5000")
            yield SqliteDatabase(conn)

    return opener


async def create_legacy_database(db: Database) -> None:
    """What the code before versions left: today's tables and rows, no alim_migrations."""
    for statements in LEGACY_SCHEMA.values():
        for statement in statements:
            await db.run(statement)
    now = "2025-05-01T09:00:00.000+00:00"
    await db.run(
        "INSERT INTO alim_threads (key, partner, user_id, thread_id, title, created_at, "
        "updated_at, message_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (KEY, OWNER.partner, OWNER.user_id, "legacy-thread", "Pomidor", now, now, 2),
    )
    await db.run(
        "INSERT INTO alim_api_keys (id, partner, key_hash, prefix, scopes, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ("k1", "acme", "0" * 64, "alim_abcde", "chat", now),
    )
    await db.run(
        "INSERT INTO alim_runs (run_id, partner, user_id, thread_id, thread_key, outcome, "
        "latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        ("run-1", "acme", OWNER.user_id, "legacy-thread", KEY, "ok", 900.0, now),
    )
    await db.run(
        "INSERT INTO alim_feedback (id, partner, thread_key, run_id, score, comment, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        ("fb_1", "acme", KEY, "run-1", 2, "yarpaqlar saralır", now),
    )
    await db.run(
        "INSERT INTO alim_webhooks (id, partner, url, secret, events, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ("wh_1", "acme", "https://partner.example/h", "whsec_x", "feedback.submitted", now),
    )
    payload = {
        "id": "evt_1",
        "event": "feedback.submitted",
        "timestamp": now,
        "data": {
            "conversation_id": "legacy-thread",
            "user_id": OWNER.user_id,
            "run_id": "run-1",
            "score": 2,
            "comment": "yarpaqlar saralır",
        },
    }
    await db.run(
        "INSERT INTO alim_outbox (id, webhook_id, event, payload, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        ("evt_1", "wh_1", "feedback.submitted", json.dumps(payload, ensure_ascii=False), now, now),
    )


async def test_a_legacy_database_is_upgraded_with_its_rows(
    open_db: OPEN, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_db() as db:
        await create_legacy_database(db)
        assert "thread_key" not in await columns(db, "alim_outbox")

        persistence = Persistence(db.kind, None, db)
        assert await persistence.setup() == LATEST

        # Rows survive, readable through the stores.
        info = await persistence.threads.get(OWNER, "legacy-thread")
        assert info is not None and (info.title, info.message_count) == ("Pomidor", 2)
        assert [k["id"] for k in await KeyStore(db).list()] == ["k1"]
        # Migration 1 of the keys: publishable keys' origins and identity secret.
        assert {"origins", "identity_secret"} <= set(await columns(db, "alim_api_keys"))
        assert [k["origins"] for k in await KeyStore(db).list()] == [""]
        assert await Analytics(db).run_exists("acme", KEY, "run-1")
        assert [f["comment"] for f in await Analytics(db).feedback("acme", KEY)] == [
            "yarpaqlar saralır"
        ]
        assert [w["id"] for w in await WebhookStore(db).list("acme")] == ["wh_1"]
        # Migration 1 of the webhooks: a new column, back-filled for the queued row.
        assert "thread_key" in await columns(db, "alim_outbox")
        row = await db.fetch_one("SELECT thread_key FROM alim_outbox WHERE id = ?", ("evt_1",))
        assert row == {"thread_key": KEY}

        # A later release's migration reaches this database too.
        class Threads(ThreadRegistry):
            MIGRATIONS: ClassVar[list[Migration]] = [
                *ThreadRegistry.MIGRATIONS,
                "ALTER TABLE alim_threads ADD COLUMN summary TEXT",
            ]

        monkeypatch.setattr(persistence, "threads", Threads(db))
        assert (await persistence.setup())["threads"] == [len(ThreadRegistry.MIGRATIONS)]
        assert "summary" in await columns(db, "alim_threads")
        assert await persistence.threads.get(OWNER, "legacy-thread") == info


async def test_setup_twice_applies_nothing_the_second_time(open_db: OPEN) -> None:
    async with open_db() as db:
        persistence = Persistence(db.kind, None, db)
        assert await persistence.setup() == LATEST
        recorded = await db.fetch_all("SELECT * FROM alim_migrations ORDER BY store, version")
        assert len(recorded) == sum(len(v) for v in LATEST.values())

        assert await persistence.setup() == {store: [] for store in LATEST}
        again = await db.fetch_all("SELECT * FROM alim_migrations ORDER BY store, version")
        assert again == recorded, "nothing re-applied, applied_at unchanged"


async def test_forgetting_a_legacy_thread_erases_its_text(open_db: OPEN) -> None:
    """The deleted thread's feedback comment leaves alim_feedback and the outbox payload."""
    async with open_db() as db:
        await create_legacy_database(db)
        await Persistence(db.kind, None, db).setup()
        async with db.transaction():
            await EscalationStore(db).cancel_for_thread(KEY)
            assert await Analytics(db).forget_thread(KEY) == 1
            assert await Outbox(db).forget_thread(KEY) == 1
            await ThreadRegistry(db).delete(KEY)
        for table in ("alim_feedback", "alim_outbox", "alim_threads"):
            for row in await db.fetch_all(f"SELECT * FROM {table}"):
                assert "saralır" not in json.dumps(row, ensure_ascii=False), table
        payload = json.loads((await db.fetch_all("SELECT payload FROM alim_outbox"))[0]["payload"])
        assert payload["data"] == {
            "conversation_id": "legacy-thread",
            "user_id": OWNER.user_id,
            "run_id": "run-1",
            "score": 2,
        }


def _each_version_once(results: list[dict[str, list[int]]]) -> None:
    for store, versions in LATEST.items():
        applied = [v for result in results for v in result[store]]
        assert sorted(applied) == versions, f"{store}: {[r[store] for r in results]}"


@pytest.mark.postgres
@pytest.mark.parametrize("legacy", [False, True], ids=["empty", "legacy"])
async def test_concurrent_setups_on_two_pools_apply_each_migration_once(
    pg_url: str, legacy: bool
) -> None:
    async with AsyncExitStack() as stack:
        dbs: list[PostgresDatabase] = []
        for _ in range(3):
            pool = postgres_pool(pg_url, max_size=4)
            await pool.open(wait=True, timeout=10.0)
            stack.push_async_callback(pool.close)
            dbs.append(PostgresDatabase(pool))
        if legacy:
            await create_legacy_database(dbs[0])

        results = await asyncio.gather(*(Persistence("postgres", None, db).setup() for db in dbs))

        _each_version_once(list(results))
        rows = await dbs[0].fetch_all("SELECT store, version FROM alim_migrations")
        assert sorted((r["store"], r["version"]) for r in rows) == sorted(
            (store, v) for store, versions in LATEST.items() for v in versions
        )
        if legacy:
            row = await dbs[1].fetch_one("SELECT thread_key FROM alim_outbox")
            assert row == {"thread_key": KEY}


@pytest.mark.postgres
async def test_two_replicas_open_persistence_together(pg_url: str, tmp_path: Path) -> None:
    """The whole start-up, the checkpointer's setup included, from two processes' worth of
    pools at once."""
    settings = make_settings(tmp_path, checkpointer="postgres", postgres_url=pg_url)

    async def start(stack: AsyncExitStack) -> Persistence:
        return await stack.enter_async_context(open_persistence(settings))

    async with AsyncExitStack() as stack:
        replicas = await asyncio.gather(start(stack), start(stack))
        for persistence in replicas:
            await persistence.ping()
        rows = await replicas[0].db.fetch_all("SELECT store, version FROM alim_migrations")
        assert len(rows) == sum(len(v) for v in LATEST.values())
        checkpoints: Any = await replicas[1].db.fetch_one(
            "SELECT COUNT(*) AS n FROM checkpoint_migrations"
        )
        assert int(checkpoints["n"]) > 0
