"""API keys: 401 without a valid key, 403 without the `chat` scope, revocation, hashed storage,
the open health check, and production's refusal of the development key."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from alim.errors import ConfigError
from alim.keys import KeyStore
from alim.persistence import open_persistence
from alim.settings import DEV_API_KEY, Settings
from tests.api.helpers import (
    INVOKE,
    STREAM,
    THREADS,
    api_client,
    assert_error,
    new_user,
    running_app,
)
from tests.conftest import _postgres_admin_url, make_settings

QUESTION = "How do I protect wheat from frost?"


def turn(user: str) -> dict[str, str]:
    return {"message": QUESTION, "user_id": user}


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": ""}], ids=["absent", "empty"])
async def test_missing_key_is_401(app: FastAPI, headers: dict[str, str]) -> None:
    user = new_user()
    async with api_client(app, key=None) as anonymous:
        responses = [
            await anonymous.post(INVOKE, json=turn(user), headers=headers),
            await anonymous.post(STREAM, json=turn(user), headers=headers),
            await anonymous.get(THREADS, params={"user_id": user}, headers=headers),
        ]

    for response in responses:
        assert_error(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    "key",
    [DEV_API_KEY + "x", DEV_API_KEY.upper(), DEV_API_KEY[:-1], "alim_" + "A" * 43],
    ids=["suffix", "upper", "truncated", "made-up"],
)
async def test_unknown_key_is_401_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, key: str
) -> None:
    user = new_user()
    async with api_client(app, key=key) as stranger:
        response = await stranger.post(INVOKE, json=turn(user))

    assert_error(response, 401, "invalid_api_key")
    listed = await client.get(THREADS, params={"user_id": user})
    assert listed.json()["threads"] == []


async def test_key_without_chat_scope_is_403(app: FastAPI) -> None:
    key, record = await app.state.keys.create("acme", ["agent"])
    assert record["scopes"] == "agent"
    user = new_user()
    async with api_client(app, key=key) as agent:
        responses = [
            await agent.post(INVOKE, json=turn(user)),
            await agent.post(STREAM, json=turn(user)),
            await agent.get(THREADS, params={"user_id": user}),
        ]

    for response in responses:
        body = assert_error(response, 403, "insufficient_scope")
        assert "chat" in body["detail"]


async def test_chat_key_works_and_owns_its_threads(app: FastAPI, client: httpx.AsyncClient) -> None:
    key, record = await app.state.keys.create("acme", ["chat"])
    assert key.startswith("alim_") and "key_hash" not in record
    user = new_user()
    async with api_client(app, key=key) as acme:
        answer = await acme.post(INVOKE, json=turn(user))
        assert answer.status_code == 200, answer.text
        listed = await acme.get(THREADS, params={"user_id": user})

    assert answer.json()["response"].strip()
    assert [t["thread_id"] for t in listed.json()["threads"]] == [answer.json()["thread_id"]]
    # The dev partner (another key) does not see acme's thread.
    assert (await client.get(THREADS, params={"user_id": user})).json()["threads"] == []


async def test_revoked_key_is_401(app: FastAPI) -> None:
    key, record = await app.state.keys.create("acme", "chat")
    user = new_user()
    async with api_client(app, key=key) as acme:
        before = await acme.post(INVOKE, json=turn(user))
        assert await app.state.keys.revoke(record["id"]) is True
        after = await acme.post(INVOKE, json=turn(user))
        listed = await acme.get(THREADS, params={"user_id": user})

    assert before.status_code == 200
    assert_error(after, 401, "invalid_api_key")
    assert_error(listed, 401, "invalid_api_key")
    assert await app.state.keys.revoke(record["id"]) is False, "revoking twice is a no-op"


async def test_only_key_hashes_are_stored(app: FastAPI) -> None:
    key, record = await app.state.keys.create("acme", "chat+agent")
    db = app.state.engine.persistence.db

    rows = await db.run("SELECT * FROM alim_api_keys", (), "all")

    mine = [r for r in rows if r["id"] == record["id"]]
    assert len(mine) == 1
    assert mine[0]["key_hash"] == hashlib.sha256(key.encode()).hexdigest()
    assert mine[0]["partner"] == "acme"
    secret = key.removeprefix("alim_")
    for row in rows:
        for value in row.values():
            assert key not in str(value)
            assert secret not in str(value)
    for listed in await app.state.keys.list():
        assert "key_hash" not in listed
        assert key not in str(listed)


async def test_health_needs_no_key(app: FastAPI) -> None:
    async with api_client(app, key=None) as anonymous:
        health = await anonymous.get("/health")
        ready = await anonymous.get("/ready")

    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"


# ------------------------------------------------------------------ production


@pytest.fixture
def fresh_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Settings]]:
    """Settings on an empty store: the shared Postgres test database holds other tests' keys,
    so Postgres gets a database of its own here."""
    if backend == "sqlite":
        yield lambda **o: make_settings(tmp_path, checkpointer="sqlite", **o)
        return
    request.getfixturevalue("postgres_url")  # skips (or fails in CI) when Postgres is down
    admin = _postgres_admin_url()
    name = f"alim_auth_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin.rsplit('/', 1)[0]}/{name}"
    try:
        yield lambda **o: make_settings(tmp_path, checkpointer="postgres", postgres_url=url, **o)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_production_refuses_to_start_without_keys(
    fresh_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError, match="no API key"):
        async with running_app(fresh_settings(env="production")):
            pytest.fail("the app started in production with no API key")


async def test_production_refuses_the_dev_key_as_a_configured_key(
    fresh_settings: Callable[..., Settings],
) -> None:
    settings = fresh_settings(env="production", api_keys=["x:" + DEV_API_KEY + ":chat"])

    with pytest.raises(ConfigError, match="development API key"):
        async with running_app(settings):
            pytest.fail("the app started in production with the development key")


async def test_production_rejects_the_dev_key_when_a_real_key_exists(
    fresh_settings: Callable[..., Settings],
) -> None:
    settings = fresh_settings(env="production", api_keys=["acme:some-long-key:chat"])
    user = new_user()
    async with running_app(settings) as app:
        async with api_client(app, key=DEV_API_KEY) as dev:
            refused = await dev.post(INVOKE, json=turn(user))
        async with api_client(app, key="some-long-key") as acme:
            answered = await acme.post(INVOKE, json=turn(user))
            listed = await acme.get(THREADS, params={"user_id": user})

    assert_error(refused, 401, "invalid_api_key")
    assert answered.status_code == 200, answered.text
    assert [t["thread_id"] for t in listed.json()["threads"]] == [answered.json()["thread_id"]]


async def test_production_starts_with_a_database_key(
    fresh_settings: Callable[..., Settings],
) -> None:
    settings = fresh_settings(env="production")
    async with open_persistence(settings) as persistence:
        key, _ = await KeyStore(persistence.db, settings).create("acme", "chat")

    user = new_user()
    async with running_app(settings) as app:
        async with api_client(app, key=key) as acme:
            answered = await acme.post(INVOKE, json=turn(user))
        async with api_client(app, key=DEV_API_KEY) as dev:
            refused = await dev.post(INVOKE, json=turn(user))

    assert answered.status_code == 200, answered.text
    assert_error(refused, 401, "invalid_api_key")
