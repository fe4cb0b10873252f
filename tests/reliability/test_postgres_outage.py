"""The Postgres cluster goes down under a running server and comes back.

While it is down: turns fail fast with 503 `checkpointer_unavailable` (no hang), /ready says the
checkpointer is unavailable, /health stays 200. Once it is back, the same server process serves
turns again (its pool reconnects): no ALİM restart.

The test stops the real cluster (`pg_ctlcluster … stop -m fast`) for a few seconds and always
starts it again, even when an assertion fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import live
from tests.support.alim_serve import new_server, postgres_env, supervised
from tests.support.live import SHORT_QUESTION

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENT_TIMEOUT = 15.0  # a request that hangs fails the test instead of the whole run
READY_WAIT = 60.0
RECOVERY_WAIT = 30.0
DURING_OUTAGE = "Pomidoru nə qədər tez-tez suvarmalıyam?"
AFTER_OUTAGE = "Buğdanı nə vaxt suvarmaq lazımdır?"


def cluster_version() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        pytest.skip("needs a local Debian-style PostgreSQL cluster (pg_ctlcluster)")
    return versions[-1]


def pg_ctl(version: str, action: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pg_ready() -> bool:
    done = subprocess.run(
        ["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "2"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def wait_pg_ready(timeout: float = READY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not pg_ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"PostgreSQL did not accept connections within {timeout:.0f} s")
        time.sleep(0.5)


@pytest.fixture
def cluster() -> Iterator[str]:
    """The local cluster's version; at teardown the cluster is running again, whatever
    happened."""
    version = cluster_version()
    if not pg_ready():
        pytest.skip("PostgreSQL is not accepting connections on 127.0.0.1:5432")
    try:
        yield version
    finally:
        if not pg_ready():
            started = pg_ctl(version, "start")
            assert started.returncode == 0 or pg_ready(), started.stderr
        wait_pg_ready()


@pytest.mark.timeout(300)
def test_postgres_outage_gives_fast_503_and_recovers_without_restart(
    cluster: str, postgres_url: str, tmp_path: Path
) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    server = new_server(tmp_path, **postgres_env(postgres_url))
    with supervised(server):
        server.start()
        with live.client(server.base_url, timeout=CLIENT_TIMEOUT) as c:
            before = live.invoke(c, SHORT_QUESTION, user, thread)
            assert before.status_code == 200, before.text
            pid = server.pid

            try:
                stopped = pg_ctl(cluster, "stop", "-m", "fast")
                assert stopped.returncode == 0, stopped.stderr
                assert not pg_ready()

                started_at = time.monotonic()
                down = live.invoke(c, DURING_OUTAGE, user, thread)
                invoke_s = time.monotonic() - started_at
                assert down.status_code == 503, down.text
                assert down.json()["code"] == "checkpointer_unavailable", down.text

                started_at = time.monotonic()
                down_stream = c.post(live.STREAM, json=live.body(DURING_OUTAGE, user, thread))
                stream_s = time.monotonic() - started_at
                assert down_stream.status_code == 503, down_stream.text
                assert down_stream.json()["code"] == "checkpointer_unavailable"

                ready = c.get("/ready")
                assert ready.status_code == 503, ready.text
                assert ready.json()["checks"]["checkpointer"] == "unavailable", ready.text
                assert c.get("/health").status_code == 200
            finally:
                started = pg_ctl(cluster, "start")
                wait_pg_ready()
            assert started.returncode == 0, started.stderr

            # The same process serves turns again once the database is back.
            back_at = time.monotonic()
            deadline = back_at + RECOVERY_WAIT
            attempts = 0
            while True:
                attempts += 1
                try:
                    after = live.invoke(c, AFTER_OUTAGE, user, thread)
                except httpx.TimeoutException:  # counts as "not yet"; the deadline bounds it
                    after = None
                if (after is not None and after.status_code == 200) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert after is not None and after.status_code == 200, after and after.text
            recovery_s = time.monotonic() - back_at
            assert server.pid == pid  # not restarted
            assert c.get("/ready").status_code == 200
            messages = live.history(c, thread, user)
        print(
            f"\n[postgres outage] 503 invoke after {invoke_s:.2f} s, 503 stream after "
            f"{stream_s:.2f} s; invoke OK {recovery_s:.2f} s after pg_isready "
            f"({attempts} attempt(s))"
        )

    # The failed turn left nothing behind; the turns before and after are whole.
    users = [m["content"] for m in messages if m["role"] == "user"]
    assert users == [SHORT_QUESTION, AFTER_OUTAGE], messages
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert answers == [before.json()["response"], after.json()["response"]], messages
