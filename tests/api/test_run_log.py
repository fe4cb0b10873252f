"""The run-event log's store (alim.runs.RunStore) on SQLite and PostgreSQL: batched appends,
replay order, first-writer-wins ends, and pruning after the TTL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from alim.persistence import open_persistence
from alim.runs import LoggedEvent, RunStore
from alim.settings import Settings
from alim.threads import Owner

OWNER = Owner("dev", "log-user")


@pytest.fixture
async def store(api_settings: Settings) -> AsyncIterator[RunStore]:
    async with open_persistence(api_settings) as persistence:
        await persistence.setup()
        yield RunStore(persistence.db)


def events(first: int, last: int) -> list[LoggedEvent]:
    return [LoggedEvent(n, "token", f"chunk {n}\nline two") for n in range(first, last + 1)]


async def test_events_append_in_batches_and_replay_in_order(store: RunStore) -> None:
    run_id = f"r-{uuid.uuid4().hex}"
    await store.create(run_id, OWNER, "key", "thread", "running")
    await store.append(run_id, events(1, 250))  # more than one statement's batch
    await store.append(run_id, events(240, 260))  # a repeat keeps what was logged
    replay = await store.events_after(run_id, 100)
    assert [e.seq for e in replay] == list(range(101, 261))
    assert replay[0] == events(101, 101)[0]
    assert await store.last_seq(run_id) == 260
    assert await store.get_owned(Owner("dev", "someone-else"), run_id) is None


async def test_only_the_first_end_of_a_run_counts(store: RunStore) -> None:
    run_id = f"r-{uuid.uuid4().hex}"
    await store.create(run_id, OWNER, "key", "thread", "running")
    lost = {"code": "run_lost", "detail": "gone", "status": 503}
    assert await store.finish(run_id, "error", error=lost, only_if_unfinished=True)
    assert not await store.finish(run_id, "error", error=lost, only_if_unfinished=True)
    info = await store.get(run_id)
    assert info is not None and (info.status, info.error) == ("error", lost)


async def test_runs_events_and_keys_are_pruned_after_the_ttl(store: RunStore) -> None:
    run_id = f"r-{uuid.uuid4().hex}"
    await store.create(run_id, OWNER, "key", "thread", "running")
    await store.append(run_id, events(1, 3))
    claim = await store.claim_key("dev", f"k-{run_id}", "hash")
    assert claim.fresh
    await store.bind_key("dev", f"k-{run_id}", run_id)
    await store.prune(3600)  # younger than the TTL: kept
    assert await store.get(run_id) is not None
    await asyncio.sleep(0.01)
    await store.prune(0.001)
    assert await store.get(run_id) is None
    assert await store.events_after(run_id, 0) == []
    assert await store.key_row("dev", f"k-{run_id}") is None
