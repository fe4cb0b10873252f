"""Operational behaviour a partner notices: rate limits (in memory and in Redis), what the logs
never contain, personal data masked before it reaches a hosted model, data retention (idle threads
deleted, checkpoints pruned) and CORS / security headers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI
from httpx_sse import aconnect_sse

from alim.logs import JsonFormatter
from alim.retention import count_checkpoints, prune
from alim.settings import DEV_API_KEY, Settings
from alim.threads import Owner, thread_key
from api.app import create_app
from api.ratelimit import MemoryCounters, RedisCounters
from engine import GraphDeps
from tests.api.helpers import (
    INVOKE,
    STREAM,
    THREADS,
    api_client,
    ask,
    assert_error,
    history,
    new_user,
    running_app,
    thread_list,
)
from tests.support.fake_llm import FakeLLM
from tests.support.fakes import HashingEmbeddings
from tests.support.servers import serve_in_thread

DROUGHT = "Fermada susuzluq var, nə edim?"
FROST = "How do I protect wheat from frost?"
ASK_HUMAN = "Mənə aqronomla danışmaq lazımdır"
PHONE = "+994 50 123 45 67"
EMAIL = "ali@example.az"
FIN = "5ABC12D"
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")

pytestmark = pytest.mark.timeout(180)


# --------------------------------------------------------------------------- rate limits


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides for the rate-limit counters: in memory, or in the real Redis (db 15,
    flushed first)."""
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()
    return {"redis_url": url}


def limits_of(response: httpx.Response) -> tuple[int, int, int]:
    for name in RATE_HEADERS:
        assert name in response.headers, (name, response.status_code, dict(response.headers))
    limit, remaining, reset = (int(response.headers[n]) for n in RATE_HEADERS)
    return limit, remaining, reset


async def test_requests_per_minute_then_429(
    api_settings_factory: Callable[..., Settings], counters: dict[str, Any]
) -> None:
    settings = api_settings_factory(rate_limit_per_minute=3, **counters)
    user = new_user()
    async with running_app(settings) as app:
        key, _ = await app.state.keys.create(f"rl-{new_user()}", ["chat"])
        # A second key of the same partner (rotation) has its own counter.
        spare, _ = await app.state.keys.create(f"rl-{new_user()}", ["chat"])
        async with api_client(app, key) as client, api_client(app, spare) as other:
            responses = [
                await client.post(INVOKE, json={"message": DROUGHT, "user_id": user}),
                await client.get(THREADS, params={"user_id": user}),
                await client.get(f"{THREADS}/missing", params={"user_id": user}),
            ]
            limited = await client.post(INVOKE, json={"message": FROST, "user_id": user})
            again = await client.get(THREADS, params={"user_id": user})
            unaffected = await other.get(THREADS, params={"user_id": user})

    assert [r.status_code for r in responses] == [200, 200, 404]
    seen = [limits_of(r) for r in responses]
    assert [limit for limit, _, _ in seen] == [3, 3, 3]
    assert [remaining for _, remaining, _ in seen] == [2, 1, 0]
    resets = {reset for _, _, reset in seen}
    assert len(resets) == 1
    (reset,) = resets  # when the first of them leaves the sliding window
    assert time.time() < reset <= time.time() + 61

    body = assert_error(limited, 429, "rate_limited")
    assert "3" in body["detail"]
    retry_after = int(limited.headers["retry-after"])
    assert 1 <= retry_after <= 60
    assert limits_of(limited) == (3, 0, reset)
    assert_error(again, 429, "rate_limited")
    assert unaffected.status_code == 200
    assert limits_of(unaffected)[:2] == (3, 2)


async def test_per_key_limit_overrides_the_default(
    api_settings_factory: Callable[..., Settings], counters: dict[str, Any]
) -> None:
    settings = api_settings_factory(**counters)
    async with running_app(settings) as app:
        acme, _ = await app.state.keys.create("acme", ["chat"], rate_limit_per_minute=2)
        default, _ = await app.state.keys.create(f"rl-{new_user()}", ["chat"])
        async with api_client(app, acme) as client, api_client(app, default) as other:
            first = await client.get(THREADS, params={"user_id": "u"})
            second = await client.get(THREADS, params={"user_id": "u"})
            third = await client.get(THREADS, params={"user_id": "u"})
            others = await other.get(THREADS, params={"user_id": "u"})

    assert [limits_of(r)[:2] for r in (first, second)] == [(2, 1), (2, 0)]
    assert_error(third, 429, "rate_limited")
    assert int(third.headers["retry-after"]) >= 1
    assert others.status_code == 200
    assert limits_of(others)[:2] == (
        settings.rate_limit_per_minute,
        settings.rate_limit_per_minute - 1,
    )


async def test_unauthenticated_requests_are_not_counted(
    api_settings_factory: Callable[..., Settings], counters: dict[str, Any]
) -> None:
    settings = api_settings_factory(rate_limit_per_minute=2, **counters)
    async with running_app(settings) as app:
        key, _ = await app.state.keys.create(f"rl-{new_user()}", ["chat"])
        async with api_client(app, None) as anonymous, api_client(app, key) as client:
            for _ in range(3):
                assert_error(
                    await anonymous.get(THREADS, params={"user_id": "u"}), 401, "invalid_api_key"
                )
            health = await anonymous.get("/health")
            ok = await client.get(THREADS, params={"user_id": "u"})
    assert health.status_code == 200
    assert "x-ratelimit-limit" not in health.headers
    assert ok.status_code == 200 and limits_of(ok)[:2] == (2, 1)


@pytest.fixture
def stream_server(
    api_settings_factory: Callable[..., Settings], counters: dict[str, Any]
) -> Iterator[tuple[str, str]]:
    """The real app on uvicorn (an in-process transport buffers whole responses, so a stream
    could not stay open): one concurrent stream per key, a slowed offline model."""
    name = f"streams-{new_user()}"
    key = f"key-{new_user()}"
    settings = api_settings_factory(
        max_streams_per_key=1,
        offline_delay=0.05,
        api_keys=[f"{name}:{key}:chat"],
        **counters,
    )
    application = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    with serve_in_thread(application) as url:
        yield url, key


@pytest.fixture
async def http(stream_server: tuple[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    url, key = stream_server
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=30) as c:
        yield c


async def test_second_concurrent_stream_is_429(http: httpx.AsyncClient) -> None:
    user = new_user()
    async with aconnect_sse(
        http, "POST", STREAM, json={"message": DROUGHT, "user_id": user, "thread_id": "a"}
    ) as source:
        assert source.response.status_code == 200
        events = source.aiter_sse()
        async for sse in events:
            if sse.event == "token":
                break
        second = await http.post(STREAM, json={"message": FROST, "user_id": user, "thread_id": "b"})
        invoked = await http.post(
            INVOKE, json={"message": FROST, "user_id": user, "thread_id": "c"}
        )
        rest = [sse.event async for sse in events]

    assert_error(second, 429, "rate_limited")
    assert int(second.headers["retry-after"]) >= 1
    assert invoked.status_code == 200, "the stream limit does not apply to invoke"
    assert rest[-1] == "done" and "error" not in rest
    # The refused stream did not start a thread.
    assert sorted(t["thread_id"] for t in await thread_list(http, user)) == ["a", "c"]

    # Once the first stream has ended, its slot is free again.
    for _ in range(100):
        async with aconnect_sse(
            http, "POST", STREAM, json={"message": FROST, "user_id": user, "thread_id": "b"}
        ) as source:
            if source.response.status_code == 429:
                await source.response.aread()
                await asyncio.sleep(0.05)
                continue
            assert source.response.status_code == 200
            names = [sse.event async for sse in source.aiter_sse()]
            break
    else:
        raise AssertionError("the stream slot was never released")
    assert names[0] == "metadata" and names[-1] == "done"


# --------------------------------------------------------------------------- logs


async def test_logs_never_hold_keys_secrets_or_message_text(
    api_settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = api_settings_factory(retention_idle_days=30, retention_interval_seconds=3600)
    user = new_user()
    message = f"Pomidor yarpaqları saralır, zəng edin {PHONE} və ya yazın {EMAIL}"
    secrets_seen: list[str] = [DEV_API_KEY]
    texts: list[str] = [message, PHONE, EMAIL, "Pomidor yarpaqları saralır"]
    async with running_app(settings) as app:
        key, _ = await app.state.keys.create(f"logs-{new_user()}", ["chat", "agent"])
        secrets_seen.append(key)
        async with api_client(app) as dev, api_client(app, key) as client:
            hook = await client.post(
                "/api/v1/webhooks",
                json={"url": "http://127.0.0.1:9/hook", "events": ["message.received"]},
            )
            assert hook.status_code == 201
            secrets_seen.append(hook.json()["secret"])
            first = await ask(client, message, user, "pii")
            async with aconnect_sse(
                client, "POST", STREAM, json={"message": f"{DROUGHT} {PHONE}", "user_id": user}
            ) as source:
                assert [s.event async for s in source.aiter_sse()][-1] == "done"
            human = await ask(client, f"{ASK_HUMAN}, {EMAIL}", user, "human")
            expert = f"Zəng edəcəm: {PHONE}"
            texts.append(expert)
            replied = await client.post(
                f"/api/v1/escalations/{human['escalation_id']}/reply",
                json={"answer": expert, "agent_id": "agro"},
            )
            assert replied.status_code == 200
            comment = f"Əla, {EMAIL}"
            texts.append(comment)
            rated = await client.post(
                f"{THREADS}/pii/feedback",
                json={"user_id": user, "run_id": first["run_id"], "score": 5, "comment": comment},
            )
            assert rated.status_code == 201
            assert (await dev.get(THREADS, params={"user_id": user})).status_code == 200
            assert (
                await client.get(THREADS, headers={"X-API-Key": "wrong-key"})
            ).status_code == 401
            weather = await ask(client, f"Bakıda sabah hava necə olacaq? {PHONE}", user)
            assert weather["route"] == "weather"
            await prune(app.state.engine.persistence, idle_days=30)
    # A run whose model is unreachable logs warnings; they hold no message text either.
    broken = api_settings_factory(
        llm_provider="openai",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_api_key="sk-test-never-logged",
        llm_max_retries=0,
        llm_timeout=1,
    )
    secrets_seen.append("sk-test-never-logged")
    async with running_app(broken) as app, api_client(app) as client:
        failed = await client.post(INVOKE, json={"message": message, "user_id": user})
        assert_error(failed, 503, "provider_unavailable")

    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert any(r.name.startswith("alim") for r in records), "the app logs at INFO"
    assert any(r.levelno == logging.WARNING for r in records), "the failures were logged"
    formatter = JsonFormatter()
    for record in records:
        entry = formatter.format(record)
        parsed = json.loads(entry)
        assert {"ts", "level", "logger", "msg"} <= set(parsed)
        for text in (record.getMessage(), entry):
            for secret in secrets_seen:
                assert secret not in text, (record.name, text)
            assert "wrong-key" not in text
            for fragment in texts:
                assert fragment not in text, (record.name, text)


# --------------------------------------------------------------------------- PII masking


async def test_personal_data_is_masked_for_the_hosted_model(
    api_settings_factory: Callable[..., Settings], fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    settings = api_settings_factory(
        llm_provider="openai",
        openai_base_url=f"{url}/v1",
        openai_api_key="k",
        llm_max_retries=0,
    )
    user = new_user()
    message = f"{DROUGHT} Nömrəm {PHONE}, e-poçt {EMAIL}, FİN {FIN}."
    async with running_app(settings) as app, api_client(app) as client:
        first = await ask(client, message, user, "pii")
        second = await ask(client, DROUGHT, user, "pii")  # the PII is in the history now
        messages = await history(client, "pii", user)

    assert first["model"] != "alim-offline" and first["response"] == llm.reply
    assert second["response"] == llm.reply
    assert len(llm.requests) == 2, "both turns reached the hosted model"
    for body in llm.requests:
        sent = json.dumps(body, ensure_ascii=False)
        for value in (PHONE, "123 45 67", EMAIL, FIN):
            assert value not in sent, value
    first_sent = json.dumps(llm.requests[0], ensure_ascii=False)
    for mask in ("[telefon]", "[e-poçt]", "[FİN]"):
        assert mask in first_sent, mask
    assert "[telefon]" in json.dumps(llm.requests[1], ensure_ascii=False), "history is masked too"
    # The stored thread keeps what the user wrote.
    assert messages[0]["content"] == message
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


# --------------------------------------------------------------------------- retention


async def thread_checkpoints(app: FastAPI, key: str) -> list[Any]:
    saver = app.state.engine.persistence.checkpointer
    return [c async for c in saver.alist({"configurable": {"thread_id": key}})]


def sqlite_bytes(data_dir: Path) -> int:
    base = data_dir / "alim.db"
    return sum(
        os.path.getsize(p) for p in (base, Path(f"{base}-wal"), Path(f"{base}-shm")) if p.exists()
    )


async def sqlite_tables(app: FastAPI) -> dict[str, int]:
    """Bytes of the checkpoint tables (SQLite's dbstat: pages in use, WAL included)."""
    saver = app.state.engine.persistence.checkpointer
    sql = (
        "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('checkpoints', 'writes') GROUP BY name"
    )
    async with saver.conn.execute(sql) as cur:
        return {name: int(size) for name, size in await cur.fetchall()}


async def pg_rows(app: FastAPI, key: str) -> dict[str, int]:
    db = app.state.engine.persistence.db
    counts = {}
    for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
        row = await db.run(f"SELECT COUNT(*) AS n FROM {table} WHERE thread_id = ?", (key,), "one")
        counts[table] = int(row["n"])
    return counts


async def make_idle(app: FastAPI, key: str) -> None:
    old = (datetime.now(UTC) - timedelta(days=90)).isoformat(timespec="milliseconds")
    await app.state.engine.persistence.db.run(
        "UPDATE alim_threads SET updated_at = ? WHERE key = ?", (old, key)
    )


async def test_retention_prunes_long_threads_and_they_still_answer(
    app: FastAPI, client: httpx.AsyncClient, api_settings: Settings, backend: str
) -> None:
    user = new_user()
    key = thread_key(Owner("dev", user), "long")
    turns = [DROUGHT, FROST, "Buğdanı şaxtadan necə qoruyum?", DROUGHT, FROST]
    answers = []
    answers.append((await ask(client, turns[0], user, "long"))["response"])
    after_one = len(await thread_checkpoints(app, key))
    size_one = sqlite_bytes(api_settings.data_dir) if backend == "sqlite" else None
    tables_one = await sqlite_tables(app) if backend == "sqlite" else None
    for text in turns[1:]:
        answers.append((await ask(client, text, user, "long"))["response"])
    after_n = len(await thread_checkpoints(app, key))
    size_n = sqlite_bytes(api_settings.data_dir) if backend == "sqlite" else None
    tables_n = await sqlite_tables(app) if backend == "sqlite" else None
    rows_n = await pg_rows(app, key) if backend == "postgres" else None

    per_turn = (after_n - after_one) / (len(turns) - 1)
    report = await prune(app.state.engine.persistence)
    remaining = await thread_checkpoints(app, key)
    rows_after = await pg_rows(app, key) if backend == "postgres" else None
    print(
        f"\n[{backend}] checkpoints of one thread: {after_one} after 1 turn, {after_n} after "
        f"{len(turns)} turns ({per_turn:.1f} per turn); after prune: {len(remaining)}; "
        f"store-wide {report.checkpoints_before} → {report.checkpoints_after}"
    )
    if backend == "sqlite":
        assert size_one is not None and size_n is not None
        print(
            f"[sqlite] alim.db (+wal): {size_one} B after 1 turn, {size_n} B after {len(turns)} "
            f"turns ({(size_n - size_one) / (len(turns) - 1):.0f} B per turn), "
            f"{sqlite_bytes(api_settings.data_dir)} B after prune"
        )
        print(
            f"[sqlite] checkpoint tables (dbstat): {tables_one} after 1 turn, {tables_n} after "
            f"{len(turns)} turns, {await sqlite_tables(app)} after prune"
        )
        assert tables_one is not None and tables_n is not None
        assert tables_n["checkpoints"] >= tables_one["checkpoints"]
    else:
        print(f"[postgres] rows of the thread before prune {rows_n}, after {rows_after}")

    assert after_n > after_one > 0, "every turn adds checkpoints"
    assert report.threads_pruned >= 1 and report.threads_deleted == 0
    assert report.checkpoints_after < report.checkpoints_before
    assert report.checkpoints_after == await count_checkpoints(app.state.engine.persistence)
    assert len(remaining) == 1, "only the latest checkpoint is kept"
    if rows_n is not None and rows_after is not None:
        assert rows_after["checkpoints"] == 1
        assert rows_after["checkpoint_blobs"] <= rows_n["checkpoint_blobs"]

    # The conversation is whole and the next turn continues it.
    before = await history(client, "long", user)
    assert [m["content"] for m in before if m["role"] == "user"] == turns
    assert [m["content"] for m in before if m["role"] == "assistant"] == answers
    nxt = await ask(client, "Şaxtadan sonra nə etməli?", user, "long")
    after = await history(client, "long", user)
    assert after[: len(before)] == before
    assert [m["role"] for m in after[len(before) :]] == ["user", "assistant"]
    assert after[-1]["content"] == nxt["response"]
    (summary,) = [t for t in await thread_list(client, user) if t["thread_id"] == "long"]
    assert summary["message_count"] == len(after)


async def test_retention_deletes_idle_threads_with_their_checkpoints(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = new_user()
    await ask(client, DROUGHT, user, "idle")
    await ask(client, FROST, user, "idle")
    await ask(client, DROUGHT, user, "recent")
    idle_key = thread_key(Owner("dev", user), "idle")
    recent_key = thread_key(Owner("dev", user), "recent")
    assert await thread_checkpoints(app, idle_key)
    await make_idle(app, idle_key)

    report = await prune(app.state.engine.persistence, idle_days=30)

    assert report.threads_deleted >= 1
    assert_error(
        await client.get(f"{THREADS}/idle", params={"user_id": user}), 404, "thread_not_found"
    )
    assert [t["thread_id"] for t in await thread_list(client, user)] == ["recent"]
    assert await thread_checkpoints(app, idle_key) == []
    saver = app.state.engine.persistence.checkpointer
    assert await saver.aget_tuple({"configurable": {"thread_id": idle_key}}) is None
    if app.state.engine.persistence.kind == "postgres":
        assert await pg_rows(app, idle_key) == {
            "checkpoints": 0,
            "checkpoint_blobs": 0,
            "checkpoint_writes": 0,
        }
    assert len(await thread_checkpoints(app, recent_key)) == 1
    assert len(await history(client, "recent", user)) == 2

    # The same thread id starts afresh.
    again = await ask(client, FROST, user, "idle")
    assert [m["content"] for m in await history(client, "idle", user)] == [FROST, again["response"]]


async def test_pruning_keeps_an_awaiting_escalation_answerable(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = new_user()
    await ask(client, DROUGHT, user, "waiting")
    escalated = await ask(client, ASK_HUMAN, user, "waiting")
    await prune(app.state.engine.persistence)

    replied = await client.post(
        f"/api/v1/escalations/{escalated['escalation_id']}/reply",
        json={"answer": "Gecə suvarın.", "agent_id": "agro"},
    )
    assert replied.status_code == 200, replied.text
    messages = await history(client, "waiting", user)
    assert [(m["role"], m["content"]) for m in messages][-2:] == [
        ("user", ASK_HUMAN),
        ("assistant", "Gecə suvarın."),
    ]
    assert messages[-1]["from_human"] is True
    assert (await ask(client, FROST, user, "waiting"))["escalated"] is False


async def test_retention_of_an_awaiting_thread_closes_its_escalation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = new_user()
    escalated = await ask(client, ASK_HUMAN, user, "forgotten")
    key = thread_key(Owner("dev", user), "forgotten")
    await make_idle(app, key)
    report = await prune(app.state.engine.persistence, idle_days=30)
    assert report.threads_deleted >= 1
    assert_error(
        await client.get(f"{THREADS}/forgotten", params={"user_id": user}), 404, "thread_not_found"
    )

    listed = (await client.get("/api/v1/escalations", params={"status": "open"})).json()
    assert escalated["escalation_id"] not in [e["id"] for e in listed["escalations"]]
    replied = await client.post(
        f"/api/v1/escalations/{escalated['escalation_id']}/reply",
        json={"answer": "Gecə suvarın.", "agent_id": "agro"},
    )
    assert replied.status_code in (404, 409), replied.text
    assert await thread_checkpoints(app, key) == []


# --------------------------------------------------------------------------- CORS


async def test_cors_allows_the_configured_origin_only(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory(cors_origins=["https://app.example"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "X-API-Key, Content-Type",
    }
    async with running_app(settings) as app, api_client(app) as client:
        allowed = await client.options(
            INVOKE, headers={"Origin": "https://app.example", **preflight}
        )
        refused = await client.options(
            INVOKE, headers={"Origin": "https://evil.example", **preflight}
        )
        simple = await client.get(
            THREADS, params={"user_id": "u"}, headers={"Origin": "https://app.example"}
        )
        foreign = await client.get(
            THREADS, params={"user_id": "u"}, headers={"Origin": "https://evil.example"}
        )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers

    assert simple.status_code == 200
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    exposed = simple.headers["access-control-expose-headers"].lower()
    for name in ("x-request-id", "retry-after", *RATE_HEADERS):
        assert name in exposed, name
    assert foreign.status_code == 200
    assert "access-control-allow-origin" not in foreign.headers

    for response in (allowed, refused, simple, foreign):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-request-id"]


async def test_no_cors_headers_without_configured_origins(client: httpx.AsyncClient) -> None:
    response = await client.get(
        THREADS, params={"user_id": "u"}, headers={"Origin": "https://app.example"}
    )
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_no_burst_of_twice_the_limit_across_a_minute_boundary(
    counters: dict[str, Any],
) -> None:
    """Five requests at 0:59.5 and five more at 1:00.2 on a 5/min key: a fixed one-minute
    window would let all ten through; the sliding window takes the first five only, and the
    next one once the first has left the window. The same rule in memory and in Redis."""
    store: Any = RedisCounters(counters["redis_url"]) if counters else MemoryCounters()
    key = f"boundary-{new_user()}"
    base = (time.time() // 60) * 60 + 59.5
    try:
        first = [await store.hit(key, base + i * 0.01, 5) for i in range(5)]
        second = [await store.hit(key, base + 0.7 + i * 0.01, 5) for i in range(5)]
        later = await store.hit(key, base + 60.001, 5)
    finally:
        if counters:
            await store.aclose()
    assert [counted for counted, _, _ in first] == [True] * 5
    assert [counted for counted, _, _ in second] == [False] * 5
    assert [count for _, count, _ in first] == [1, 2, 3, 4, 5]
    assert second[0][2] == pytest.approx(base)  # the oldest counted request
    assert later[0] is True  # the first request has left the window


def test_a_body_that_stops_arriving_gets_408_and_the_connection_is_freed(
    api_settings_factory: Callable[..., Settings],
) -> None:
    """Half a body, then silence (slowloris on the body): refused after ALIM_BODY_READ_TIMEOUT,
    over a real socket."""
    import socket

    settings = api_settings_factory(body_read_timeout=0.5)
    application = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    with serve_in_thread(application) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/graph/invoke HTTP/1.1\r\nHost: alim\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100\r\n"
                + f"X-API-Key: {DEV_API_KEY}\r\n\r\n".encode()
                + b'{"message": "Pomidor'
            )
            answer = b""
            while b"\r\n\r\n" not in answer or b"}" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert json.loads(body)["code"] == "request_timeout"
