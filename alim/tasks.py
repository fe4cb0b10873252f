"""Stopping background tasks for good.

On Python 3.11 `asyncio.wait_for` can lose a cancellation that arrives just as the awaited thing
completes (CPython gh-86296, fixed in 3.12), and psycopg_pool waits for a free connection that
way. A background loop cancelled at that moment goes on looping, and whoever awaits it waits
forever: a server that never finishes shutting down, the suite's rare teardown hang. `stop_tasks`
cancels again until the tasks end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger("alim.tasks")


async def stop_tasks(
    tasks: Iterable[asyncio.Task[Any]], *, every: float = 0.1, patience: float = 10.0
) -> None:
    """Cancel the tasks, again every `every` seconds while one runs on, and wait for them for
    up to `patience` seconds (then log the ones left). A task that had failed is logged."""
    tasks = list(tasks)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=every)
        if pending and loop.time() >= deadline:
            log.warning("tasks still running after %g s: %s", patience, _names(pending))
            break
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.error("task %s had failed", task.get_name(), exc_info=task.exception())


def _names(tasks: Iterable[asyncio.Task[Any]]) -> str:
    return ", ".join(sorted(t.get_name() for t in tasks))
