"""Background tasks stop at shutdown even when a library lost their first cancellation."""

from __future__ import annotations

import asyncio
import logging

import pytest

from alim.tasks import stop_tasks


async def ready() -> None:
    """A wait that ends at its first step (a free connection in the pool)."""


async def polls_like_a_pool_wait() -> None:
    """A background loop that waits with `asyncio.wait_for`, as psycopg_pool waits for a free
    connection: on Python 3.11 a cancellation that arrives as the wait ends is lost (CPython
    gh-86296) and the loop goes on."""
    while True:
        await asyncio.wait_for(ready(), timeout=1)
        await asyncio.sleep(0.01)


async def test_a_loop_that_lost_its_cancellation_is_stopped_all_the_same() -> None:
    task = asyncio.create_task(polls_like_a_pool_wait(), name="poller")
    await asyncio.sleep(0)  # inside wait_for now: the cancellation stop_tasks sends first

    await asyncio.wait_for(stop_tasks([task]), timeout=5)

    assert task.cancelled()


async def test_a_task_that_failed_is_logged_and_one_that_will_not_stop_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails() -> None:
        raise RuntimeError("broken loop")

    released = asyncio.Event()

    async def refuses() -> None:
        while not released.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue

    failed = asyncio.create_task(fails(), name="failing")
    stubborn = asyncio.create_task(refuses(), name="stubborn")
    await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="alim.tasks"):
        await stop_tasks([failed, stubborn], patience=0.3)

    assert "task failing had failed" in caplog.text
    assert "tasks still running after 0.3 s: stubborn" in caplog.text
    assert not stubborn.done()
    released.set()
    await stubborn
