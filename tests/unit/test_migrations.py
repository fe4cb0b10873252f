"""Numbered schema migrations (alim.migrations) on SQLite, the typed insert helper, and the
stores' `forget_thread` (a deleted thread's feedback and webhook payload text)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import aiosqlite
import pytest

from alim.analytics import Analytics
from alim.assistants import AssistantStore
from alim.db import Database, SqliteDatabase, insert_sql
from alim.handoff import EscalationStore
from alim.keys import KeyStore
from alim.knowledge.store import KnowledgeStore
from alim.migrations import MigratedStore, Migration, applied_versions, migrate
from alim.persistence import Persistence
from alim.runs import RunStore
from alim.threads import Owner, ThreadRegistry, thread_key
from alim.webhooks import PAYLOAD_IDS, Outbox, WebhookStore

# The schema as released before versions existed: each store's migration 0 must be exactly this
# (a database created by that code upgrades from it).
LEGACY_SCHEMA: dict[str, list[str]] = {
    "threads": [
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
        "CREATE INDEX IF NOT EXISTS alim_threads_owner ON alim_threads "
        "(partner, user_id, updated_at)",
    ],
    "keys": [
        """CREATE TABLE IF NOT EXISTS alim_api_keys (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        rate_limit_per_minute INTEGER,
        max_streams INTEGER,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    ],
    "escalations": [
        """CREATE TABLE IF NOT EXISTS alim_escalations (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        run_id TEXT NOT NULL,
        question TEXT NOT NULL,
        reason TEXT NOT NULL,
        confidence REAL,
        sources TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL DEFAULT 'open',
        created_at TEXT NOT NULL,
        resolved_at TEXT,
        answer TEXT,
        agent_id TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS alim_escalations_partner ON alim_escalations "
        "(partner, status, created_at)",
    ],
    "webhooks": [
        """CREATE TABLE IF NOT EXISTS alim_webhooks (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT NOT NULL,
        created_at TEXT NOT NULL,
        deleted_at TEXT
    )""",
        """CREATE TABLE IF NOT EXISTS alim_outbox (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        last_status INTEGER,
        last_error TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS alim_outbox_due ON alim_outbox (status, next_attempt_at)",
        "CREATE INDEX IF NOT EXISTS alim_outbox_webhook ON alim_outbox (webhook_id, created_at)",
    ],
    "analytics": [
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
    ],
    "assistants": [
        """CREATE TABLE IF NOT EXISTS alim_assistants (
        partner TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        instructions TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        escalation_threshold REAL,
        default_language TEXT NOT NULL DEFAULT 'auto',
        default_region TEXT,
        updated_at TEXT NOT NULL
    )""",
    ],
    "runs": [
        """CREATE TABLE IF NOT EXISTS alim_run_records (
        run_id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        user_id TEXT NOT NULL,
        thread_key TEXT NOT NULL,
        thread_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        heartbeat_at TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        result TEXT,
        error TEXT
    )""",
        "CREATE INDEX IF NOT EXISTS alim_run_records_thread ON alim_run_records (thread_key)",
        "CREATE INDEX IF NOT EXISTS alim_run_records_created ON alim_run_records (created_at)",
        """CREATE TABLE IF NOT EXISTS alim_run_events (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event TEXT NOT NULL,
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
        """CREATE TABLE IF NOT EXISTS alim_idempotency_keys (
        partner TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        run_id TEXT,
        status_code INTEGER,
        response TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (partner, key)
    )""",
        "CREATE INDEX IF NOT EXISTS alim_idempotency_created ON alim_idempotency_keys (created_at)",
    ],
    # Stores born after versions existed: their migration 0 as first released.
    "knowledge": [
        """CREATE TABLE IF NOT EXISTS alim_datasets (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        language TEXT,
        is_default INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS alim_datasets_partner ON alim_datasets (partner)",
        # One default dataset per partner, also when two replicas create it at once.
        "CREATE UNIQUE INDEX IF NOT EXISTS alim_datasets_default ON alim_datasets (partner) "
        "WHERE is_default = 1",
        """CREATE TABLE IF NOT EXISTS alim_kb_documents (
        id TEXT PRIMARY KEY,
        dataset_id TEXT NOT NULL,
        partner TEXT NOT NULL,
        external_id TEXT,
        title TEXT NOT NULL,
        language TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        filename TEXT,
        file_type TEXT,
        page_count INTEGER,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        embedder TEXT NOT NULL,
        chunk_count INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
        "CREATE INDEX IF NOT EXISTS alim_kb_documents_dataset ON alim_kb_documents "
        "(dataset_id, content_hash)",
        "CREATE UNIQUE INDEX IF NOT EXISTS alim_kb_documents_external ON alim_kb_documents "
        "(dataset_id, external_id) WHERE external_id IS NOT NULL",
        """CREATE TABLE IF NOT EXISTS alim_kb_chunks (
        document_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        dataset_id TEXT NOT NULL,
        text TEXT NOT NULL,
        page_number INTEGER,
        vector BYTEA NOT NULL,
        sentence_vectors BYTEA NOT NULL,
        PRIMARY KEY (document_id, chunk_index)
    )""",
        "CREATE INDEX IF NOT EXISTS alim_kb_chunks_dataset ON alim_kb_chunks (dataset_id)",
    ],
}
STORE_CLASSES: dict[str, type[MigratedStore]] = {
    "threads": ThreadRegistry,
    "keys": KeyStore,
    "escalations": EscalationStore,
    "webhooks": WebhookStore,
    "analytics": Analytics,
    "assistants": AssistantStore,
    "runs": RunStore,
    "knowledge": KnowledgeStore,
}


@pytest.fixture
async def db() -> AsyncIterator[SqliteDatabase]:
    async with aiosqlite.connect(":memory:") as conn:
        yield SqliteDatabase(conn)


async def columns(db: Database, table: str) -> set[str]:
    if db.kind == "sqlite":
        return {r["name"] for r in await db.fetch_all(f"PRAGMA table_info({table})")}
    rows = await db.fetch_all(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ?",
        (table,),
    )
    return {r["column_name"] for r in rows}


def test_every_store_starts_from_the_released_schema() -> None:
    assert set(STORE_CLASSES) == set(LEGACY_SCHEMA)
    for store, cls in STORE_CLASSES.items():
        assert cls.STORE == store
        assert cls.MIGRATIONS[0] == LEGACY_SCHEMA[store], f"{store}: migration 0 was edited"


def test_persistence_sets_up_every_store(db: SqliteDatabase) -> None:
    stores = Persistence("memory", None, db).stores()
    assert [s.STORE for s in stores] == list(STORE_CLASSES)


async def test_migrate_applies_in_order_once_and_records_versions(db: SqliteDatabase) -> None:
    ran: list[str] = []

    async def backfill(database: Database) -> None:
        ran.append("backfill")
        await database.run("UPDATE t SET b = a * 2")

    migrations: list[Migration] = [
        "CREATE TABLE IF NOT EXISTS t (a INTEGER)",
        ["ALTER TABLE t ADD COLUMN b INTEGER", "INSERT INTO t (a) VALUES (21)", backfill],
    ]
    assert await applied_versions(db, "demo") == []
    assert await migrate(db, "demo", migrations) == [0, 1]
    assert await db.fetch_all("SELECT a, b FROM t") == [{"a": 21, "b": 42}]
    assert ran == ["backfill"]
    assert await applied_versions(db, "demo") == [0, 1]

    assert await migrate(db, "demo", migrations) == [], "up to date: nothing runs again"
    assert ran == ["backfill"]
    assert await db.fetch_all("SELECT a, b FROM t") == [{"a": 21, "b": 42}]

    migrations.append("ALTER TABLE t ADD COLUMN c TEXT")
    assert await migrate(db, "demo", migrations) == [2]
    assert await columns(db, "t") == {"a", "b", "c"}
    rows = await db.fetch_all(
        "SELECT store, version FROM alim_migrations WHERE store = ? ORDER BY version", ("demo",)
    )
    assert rows == [{"store": "demo", "version": v} for v in (0, 1, 2)]
    assert await applied_versions(db, "other") == [], "versions are per store"


async def test_a_failing_migration_leaves_the_previous_version(db: SqliteDatabase) -> None:
    migrations: list[Migration] = ["CREATE TABLE t (a INTEGER)"]
    await migrate(db, "demo", migrations)
    migrations.append(["ALTER TABLE t ADD COLUMN b INTEGER", "ALTER TABLE missing ADD COLUMN x"])
    with pytest.raises(Exception, match="missing"):
        await migrate(db, "demo", migrations)
    assert await applied_versions(db, "demo") == [0]
    assert await columns(db, "t") == {"a"}, "the half-applied migration was rolled back"

    migrations[1] = "ALTER TABLE t ADD COLUMN b INTEGER"  # fixed before release
    assert await migrate(db, "demo", migrations) == [1]
    assert await columns(db, "t") == {"a", "b"}


async def test_a_database_newer_than_the_code_is_left_alone(
    db: SqliteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(db, "demo", ["CREATE TABLE t (a INTEGER)", "ALTER TABLE t ADD COLUMN b TEXT"])
    assert await migrate(db, "demo", ["CREATE TABLE IF NOT EXISTS t (a INTEGER)"]) == []
    assert "newer than this code knows" in caplog.text


async def test_store_setup_runs_a_later_migration_once(db: SqliteDatabase) -> None:
    class Threads(ThreadRegistry):
        MIGRATIONS: ClassVar[list[Migration]] = [
            *ThreadRegistry.MIGRATIONS,
            "ALTER TABLE alim_threads ADD COLUMN topic TEXT",
        ]

    registry = ThreadRegistry(db)
    assert await registry.setup() == [0]
    info = await registry.ensure(Owner("acme", "u1"), "t1", "Pomidor")
    assert await Threads(db).setup() == [1]
    assert await Threads(db).setup() == []
    assert "topic" in await columns(db, "alim_threads")
    assert await registry.get(Owner("acme", "u1"), "t1") == info, "reads name their columns"


async def test_persistence_setup_twice_applies_nothing_the_second_time(
    db: SqliteDatabase,
) -> None:
    persistence = Persistence("memory", None, db)
    first = await persistence.setup()
    assert first == {
        store: list(range(len(cls.MIGRATIONS))) for store, cls in STORE_CLASSES.items()
    }
    before = await db.fetch_all("SELECT * FROM alim_migrations ORDER BY store, version")
    assert await persistence.setup() == {store: [] for store in STORE_CLASSES}
    assert await db.fetch_all("SELECT * FROM alim_migrations ORDER BY store, version") == before


async def test_two_processes_on_one_sqlite_file_migrate_once(tmp_path: Path) -> None:
    import asyncio

    path = str(tmp_path / "alim.db")
    async with aiosqlite.connect(path) as a, aiosqlite.connect(path) as b:
        for conn in (a, b):
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute("PRAGMA busy_timeout=5000")
        results = await asyncio.gather(
            Persistence("sqlite", None, SqliteDatabase(a)).setup(),
            Persistence("sqlite", None, SqliteDatabase(b)).setup(),
        )
        for store, cls in STORE_CLASSES.items():
            applied = results[0][store] + results[1][store]
            assert sorted(applied) == list(range(len(cls.MIGRATIONS))), store
        rows = await SqliteDatabase(a).fetch_all("SELECT store, version FROM alim_migrations")
        assert len(rows) == sum(len(cls.MIGRATIONS) for cls in STORE_CLASSES.values())


def test_insert_sql_names_its_columns_and_refuses_odd_names() -> None:
    assert insert_sql("t", ["a", "b"]) == "INSERT INTO t (a, b) VALUES (?, ?)"
    assert insert_sql("t", ["a"], "ON CONFLICT DO NOTHING").endswith(") ON CONFLICT DO NOTHING")
    for bad in ("a; DROP TABLE t", "a b", "", "1a"):
        with pytest.raises(ValueError):
            insert_sql("t", [bad])
    with pytest.raises(ValueError):
        insert_sql("t; --", ["a"])


async def test_insert_takes_pairs_or_a_mapping(db: SqliteDatabase) -> None:
    await db.run("CREATE TABLE t (a INTEGER, b TEXT)")
    await db.insert("t", [("b", "x"), ("a", 1)])
    await db.insert("t", {"b": "y", "a": 2})
    assert await db.fetch_all("SELECT a, b FROM t ORDER BY a") == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": "y"},
    ]


# -- forget_thread ---------------------------------------------------------------------------


async def _run(analytics: Analytics, key: str, run_id: str) -> None:
    await analytics.record_run(
        run_id=run_id,
        partner="acme",
        user_id="u1",
        thread_id="t",
        thread_key=key,
        outcome="ok",
        latency_ms=12.5,
        route="rag",
    )


async def test_analytics_forget_thread_deletes_its_feedback_only(db: SqliteDatabase) -> None:
    analytics = Analytics(db)
    await analytics.setup()
    gone, kept = thread_key(Owner("acme", "u1"), "gone"), thread_key(Owner("acme", "u1"), "kept")
    await _run(analytics, gone, "run-gone")
    await _run(analytics, kept, "run-kept")
    await analytics.add_feedback("acme", gone, "run-gone", 1, "Pomidor yarpaqları saralır")
    await analytics.add_feedback("acme", gone, "run-gone", 2, None)
    mine = await analytics.add_feedback("acme", kept, "run-kept", 5, "çox sağ olun")

    assert await analytics.forget_thread(gone) == 2
    assert await analytics.feedback("acme", gone) == []
    assert await analytics.feedback("acme", kept) == [mine]
    comments = await db.fetch_all("SELECT comment FROM alim_feedback")
    assert all("Pomidor" not in str(r["comment"]) for r in comments)
    # Runs (no text) stay for the totals, but no longer belong to a thread of that id.
    assert await db.fetch_one("SELECT run_id FROM alim_runs WHERE run_id = 'run-gone'")
    assert not await analytics.run_exists("acme", gone, "run-gone")
    assert await analytics.run_exists("acme", kept, "run-kept")
    assert await analytics.forget_thread(gone) == 0


async def test_outbox_rows_know_their_thread_and_forget_its_text(db: SqliteDatabase) -> None:
    hooks, outbox = WebhookStore(db), Outbox(db)
    await hooks.setup()
    await hooks.register("acme", "https://partner.example/hooks", ["feedback.submitted"])
    gone, kept = thread_key(Owner("acme", "u1"), "gone"), thread_key(Owner("acme", "u1"), "kept")
    for conversation in ("gone", "kept"):
        data: dict[str, Any] = {
            "conversation_id": conversation,
            "user_id": "u1",
            "run_id": f"run-{conversation}",
            "feedback_id": "fb_1",
            "score": 2,
            "comment": f"secret text of {conversation}",
        }
        assert await outbox.emit("acme", "feedback.submitted", data) == 1
    rows = await db.fetch_all("SELECT thread_key FROM alim_outbox ORDER BY created_at")
    assert {r["thread_key"] for r in rows} == {gone, kept}

    assert await outbox.forget_thread(gone) == 1
    assert await outbox.forget_thread(gone) == 0, "already ids only"
    payloads = {
        r["thread_key"]: json.loads(r["payload"])
        for r in await db.fetch_all("SELECT thread_key, payload FROM alim_outbox")
    }
    assert payloads[gone]["data"] == {
        "conversation_id": "gone",
        "user_id": "u1",
        "run_id": "run-gone",
        "feedback_id": "fb_1",
        "score": 2,
    }
    assert set(payloads[gone]["data"]) <= PAYLOAD_IDS
    assert payloads[gone]["event"] == "feedback.submitted" and payloads[gone]["id"]
    assert payloads[kept]["data"]["comment"] == "secret text of kept"


async def test_emit_takes_an_explicit_thread_key(db: SqliteDatabase) -> None:
    hooks, outbox = WebhookStore(db), Outbox(db)
    await hooks.setup()
    await hooks.register("acme", "https://partner.example/hooks", ["message.received"])
    await outbox.emit("acme", "message.received", {"note": "no ids"}, thread_key="k1")
    await outbox.emit("acme", "message.received", {"note": "no ids"})
    rows = await db.fetch_all("SELECT thread_key FROM alim_outbox ORDER BY thread_key")
    assert sorted(r["thread_key"] or "" for r in rows) == ["", "k1"]
