"""Numbered schema migrations for ALİM's own tables (not the checkpointer's).

Each store declares `MIGRATIONS`, a list whose position is the version: migration 0 is the
schema as it was before versions existed (`CREATE … IF NOT EXISTS`, so a database created then
takes it as a no-op), later ones change it (`ALTER TABLE …`). Never edit or reorder a released
migration; append a new one. The table `alim_migrations(store, version, applied_at)` records
what ran. A migration is one SQL statement, a list of them, or a list that also holds async
functions of the database (data back-fills written in Python).

`migrate()` applies the missing ones of one store in one transaction that holds a lock every
process on the database respects (`Database.locked_transaction`: `pg_advisory_xact_lock` on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite): replicas starting together apply each migration
exactly once, and a failed migration leaves the store at its previous version.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from alim.db import Database
from alim.timeutil import now_iso

log = logging.getLogger(__name__)

DataMigration = Callable[[Database], Awaitable[None]]
Step = str | DataMigration
Migration = str | Sequence[Step]

TABLE = "alim_migrations"
LOCK_KEY = "alim:migrations"
_TABLE_SQL = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    store TEXT NOT NULL,
    version INTEGER NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (store, version)
)"""


def steps(migration: Migration) -> list[Step]:
    return [migration] if isinstance(migration, str) else list(migration)


async def applied_versions(db: Database, store: str) -> list[int]:
    """The versions of `store` recorded in the database, ascending ([] before any migration)."""
    async with db.locked_transaction(LOCK_KEY):
        await db.run(_TABLE_SQL)
        return await _versions(db, store)


async def _versions(db: Database, store: str) -> list[int]:
    rows = await db.fetch_all(f"SELECT version FROM {TABLE} WHERE store = ?", (store,))
    return sorted(int(r["version"]) for r in rows)


async def migrate(db: Database, store: str, migrations: Sequence[Migration]) -> list[int]:
    """Apply the migrations of `store` that the database has not recorded; returns the
    versions applied now (empty when it was up to date)."""
    async with db.locked_transaction(LOCK_KEY):
        await db.run(_TABLE_SQL)
        done = set(await _versions(db, store))
        newer = sorted(v for v in done if v >= len(migrations))
        if newer:
            log.warning(
                "store %s is at version %d, newer than this code knows (%d): not downgrading",
                store,
                newer[-1],
                len(migrations) - 1,
            )
        applied: list[int] = []
        for version, migration in enumerate(migrations):
            if version in done:
                continue
            for step in steps(migration):
                if isinstance(step, str):
                    await db.run(step)
                else:
                    await step(db)
            await db.insert(TABLE, {"store": store, "version": version, "applied_at": now_iso()})
            applied.append(version)
    if applied:
        log.info("store %s migrated: versions %s", store, applied)
    return applied


class MigratedStore:
    """A store whose tables `setup()` brings to its latest version."""

    STORE: ClassVar[str]
    MIGRATIONS: ClassVar[Sequence[Migration]]
    db: Database

    async def setup(self) -> list[int]:
        """Create or upgrade the store's tables; the versions applied now."""
        return await migrate(self.db, self.STORE, self.MIGRATIONS)
