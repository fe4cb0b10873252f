"""Two server processes on one Postgres database and the real Redis (ALIM_REDIS_URL).

Threads move between replicas, the per-thread run lock holds across them (exactly one 409
`thread_busy` for two concurrent runs), a run started on one replica is resumed and cancelled on
the other, the per-key rate limit is shared through Redis, and an article ingested or deleted
through one replica is searched (or gone) on the other within 2 s.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from httpx_sse import ServerSentEvent

from bench.procs import Server
from tests.support import live
from tests.support.alim_serve import new_server, postgres_env, supervised
from tests.support.live import DROUGHT_QUESTION, SHORT_QUESTION

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SLOW_DELAY = "0.2"  # ~26 chunks: a drought answer takes ~5 s, long enough to overlap runs
RATE_LIMIT = 5


def pair(tmp_path: Path, **env: str) -> Iterator[tuple[Server, Server]]:
    a = new_server(tmp_path / "a", **env)
    b = new_server(tmp_path / "b", **env)
    with supervised(a, b, last=4000):
        a.start()
        b.start()
        yield a, b


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[tuple[Server, Server]]:
    env = {**postgres_env(postgres_url), "ALIM_REDIS_URL": redis_url}
    yield from pair(tmp_path_factory.mktemp("two"), ALIM_OFFLINE_DELAY=SLOW_DELAY, **env)


@pytest.mark.timeout(240)
def test_thread_started_on_a_continues_on_b(servers: tuple[Server, Server]) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    with live.client(servers[0].base_url) as a, live.client(servers[1].base_url) as b:
        first = live.invoke(a, SHORT_QUESTION, user, thread)
        assert first.status_code == 200, first.text
        assert [m["role"] for m in live.history(b, thread, user)] == ["user", "assistant"]
        second = live.invoke(b, DROUGHT_QUESTION, user, thread)
        assert second.status_code == 200, second.text
        for c in (a, b):
            messages = live.history(c, thread, user)
            assert [m["role"] for m in messages] == ["user", "assistant"] * 2
            assert [m["content"] for m in messages] == [
                SHORT_QUESTION,
                first.json()["response"],
                DROUGHT_QUESTION,
                second.json()["response"],
            ]


@pytest.mark.timeout(240)
def test_run_on_a_makes_b_refuse_exactly_once(servers: tuple[Server, Server]) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    with live.client(servers[0].base_url) as a, live.client(servers[1].base_url) as b:
        with live.open_stream(a, DROUGHT_QUESTION, user, thread) as source:
            assert source.response.status_code == 200
            events = source.iter_sse()
            first = next(events)
            assert first.event == "metadata"
            assert json.loads(first.data)["thread_id"] == thread
            busy = live.invoke(b, SHORT_QUESTION, user, thread)
            rest = list(events)
        assert busy.status_code == 409, busy.text
        assert busy.json()["code"] == "thread_busy"
        assert [e.event for e in rest][-2:] == ["sources", "done"]
        assert "error" not in [e.event for e in rest]

        # Once A's run is over, B runs on the thread; only A's turn and B's new one are stored.
        after = live.invoke(b, SHORT_QUESTION, user, thread)
        assert after.status_code == 200, after.text
        messages = live.history(a, thread, user)
    assert [m["content"] for m in messages] == [
        DROUGHT_QUESTION,
        live.answer_of(rest),
        SHORT_QUESTION,
        after.json()["response"],
    ]


def cut_after(c: httpx.Client, user: str, thread: str, count: int) -> list[ServerSentEvent]:
    """Start a stream, read `count` events, hang up (the run goes on)."""
    seen: list[ServerSentEvent] = []
    with live.open_stream(c, DROUGHT_QUESTION, user, thread) as source:
        assert source.response.status_code == 200
        for event in source.iter_sse():
            seen.append(event)
            if len(seen) == count:
                break
    return seen


@pytest.mark.timeout(240)
def test_a_stream_cut_on_a_is_resumed_on_b_to_its_end(servers: tuple[Server, Server]) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    with live.client(servers[0].base_url) as a, live.client(servers[1].base_url) as b:
        seen = cut_after(a, user, thread, 6)
        run_id = json.loads(seen[0].data)["run_id"]
        with live.resume_stream(b, run_id, user, seen[-1].id) as source:
            assert source.response.status_code == 200
            rest = list(source.iter_sse())
        events = seen + rest
        assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
        assert [e.event for e in events][-2:] == ["sources", "done"]
        messages = live.history(b, thread, user)
    assert [m["content"] for m in messages] == [DROUGHT_QUESTION, live.answer_of(events)]


@pytest.mark.timeout(240)
def test_a_run_on_a_is_cancelled_from_b(servers: tuple[Server, Server]) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    with live.client(servers[0].base_url) as a, live.client(servers[1].base_url) as b:
        seen = cut_after(a, user, thread, 5)
        run_id = json.loads(seen[0].data)["run_id"]
        with live.resume_stream(b, run_id, user, seen[-1].id) as source:
            events = source.iter_sse()
            rest = [next(events)]
            cancel = b.post(f"/api/v1/runs/{run_id}/cancel", params={"user_id": user})
            assert cancel.status_code == 200, cancel.text
            rest += list(events)
        kinds = [e.event for e in rest]
        assert kinds[-2:] == ["error", "done"] and "sources" not in kinds, kinds
        assert json.loads(rest[-2].data)["code"] == "cancelled"
        status = a.get(f"/api/v1/runs/{run_id}", params={"user_id": user}).json()
        assert (status["status"], status["result"]) == ("cancelled", None)
        # No half answer, and the thread takes the next turn on either replica.
        after = live.invoke(b, SHORT_QUESTION, user, thread)
        assert after.status_code == 200, after.text
        messages = live.history(a, thread, user)
    assert [m["role"] for m in messages] == ["user", "user", "assistant"]


@pytest.mark.timeout(240)
def test_simultaneous_runs_on_a_and_b_one_wins_one_gets_409(
    servers: tuple[Server, Server],
) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    with live.client(servers[0].base_url) as a:  # the thread exists before the race
        opening = live.invoke(a, SHORT_QUESTION, user, thread)
        assert opening.status_code == 200, opening.text

    barrier = threading.Barrier(2, timeout=30)
    responses: dict[str, httpx.Response] = {}

    def run(name: str, server: Server) -> None:
        with live.client(server.base_url) as c:
            barrier.wait()
            responses[name] = live.invoke(c, DROUGHT_QUESTION, user, thread)

    workers = [
        threading.Thread(target=run, args=(name, server))
        for name, server in zip("ab", servers, strict=True)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert sorted(responses) == ["a", "b"], responses
    statuses = sorted(r.status_code for r in responses.values())
    assert statuses == [200, 409], {k: (r.status_code, r.text[:200]) for k, r in responses.items()}
    loser = next(r for r in responses.values() if r.status_code == 409)
    winner = next(r for r in responses.values() if r.status_code == 200)
    assert loser.json()["code"] == "thread_busy"

    with live.client(servers[1].base_url) as b:
        messages = live.history(b, thread, user)
    assert [m["content"] for m in messages] == [
        SHORT_QUESTION,
        opening.json()["response"],
        DROUGHT_QUESTION,
        winner.json()["response"],
    ]


SYNC_WITHIN = 1.5  # seconds after the ingest (or delete) returns; the contract says 2
SYNC_WORD = "Qorvaxin"  # made up: in no bundled article
SYNC_ARTICLE = {
    "title": f"{SYNC_WORD} preparatı ilə pambığın qorunması",
    "content": (
        f"{SYNC_WORD} preparatını pambıq sahəsinə iyun ayında, səhər tezdən çiləyin. "
        f"{SYNC_WORD} hər hektara iki litr suda həll edilir. {SYNC_WORD} çiləndikdən sonra üç "
        "gün sahəni suvarmayın."
    ),
    "language": "az",
}
SYNC_QUESTION = f"{SYNC_WORD} preparatını pambığa nə vaxt çiləyim?"


def cited_ids(c: httpx.Client) -> list[str]:
    r = live.invoke(c, SYNC_QUESTION, live.new_id("user"), None)
    assert r.status_code == 200, r.text
    return [s["id"] for s in r.json()["sources"]]


@pytest.mark.timeout(240)
def test_an_article_ingested_on_a_is_answered_on_b_and_deleted_on_b_is_gone_on_a(
    servers: tuple[Server, Server],
) -> None:
    with live.client(servers[0].base_url) as a, live.client(servers[1].base_url) as b:
        dataset = a.post("/api/v1/datasets", json={"name": "sync"})
        assert dataset.status_code == 201, dataset.text
        added = a.post(
            "/api/v1/knowledge", json={**SYNC_ARTICLE, "dataset_id": dataset.json()["id"]}
        )
        assert added.status_code == 201, added.text
        ingested = time.monotonic()
        article = added.json()["id"]
        time.sleep(max(0.0, ingested + SYNC_WITHIN - time.monotonic()))
        on_b = cited_ids(b)  # asked through B 1.5 s after the ingest: no restart, no rebuild
        assert on_b[:1] == [article], on_b

        deleted = b.delete(f"/api/v1/knowledge/{article}")
        assert deleted.status_code == 204, deleted.text
        gone = time.monotonic()
        time.sleep(max(0.0, gone + SYNC_WITHIN - time.monotonic()))
        assert article not in cited_ids(a)
        assert a.get(f"/api/v1/knowledge/{article}").status_code == 404


@pytest.fixture
def limited_servers(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> Iterator[tuple[Server, Server]]:
    env = {
        **postgres_env(postgres_url),
        "ALIM_REDIS_URL": redis_url,
        "ALIM_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
    }
    yield from pair(tmp_path, **env)


@pytest.mark.timeout(240)
def test_rate_limit_is_shared_through_redis(
    limited_servers: tuple[Server, Server], redis_url: str
) -> None:
    conn = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        conn.flushdb()
    finally:
        conn.close()
    user = live.new_id("user")
    responses: list[httpx.Response] = []
    with (
        live.client(limited_servers[0].base_url) as a,
        live.client(limited_servers[1].base_url) as b,
    ):
        for i in range(RATE_LIMIT + 1):
            c = (a, b)[i % 2]
            responses.append(c.get("/api/v1/threads", params={"user_id": user}))

    statuses = [r.status_code for r in responses]
    assert statuses == [200] * RATE_LIMIT + [429], [(r.status_code, r.text) for r in responses]
    for r in responses:
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert header in r.headers, (r.status_code, dict(r.headers))
        assert r.headers["X-RateLimit-Limit"] == str(RATE_LIMIT)
    remaining = [int(r.headers["X-RateLimit-Remaining"]) for r in responses]
    assert remaining == [*range(RATE_LIMIT - 1, -1, -1), 0], remaining
    resets = {int(r.headers["X-RateLimit-Reset"]) for r in responses}
    assert len(resets) == 1  # when the first request leaves the sliding window

    limited = responses[-1]
    assert limited.json()["code"] == "rate_limited", limited.text
    assert int(limited.headers["Retry-After"]) >= 1
    print(
        f"\n[two servers] rate limit {RATE_LIMIT}/min over Redis: statuses {statuses}, "
        f"remaining {remaining}, Retry-After {limited.headers['Retry-After']}"
    )
