"""Publishable keys for the website widget: origin allowlist (server-side and CORS), visitor
identity (signed visitor tokens, partners' user_hash), per-visitor rate limits, and the script."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI

from alim.errors import ConfigError, InvalidRequest
from alim.keys import KeyStore, normalize_origin, parse_scopes
from alim.persistence import open_persistence
from alim.settings import Settings
from alim.visitors import issue_visitor, user_hash
from tests.api.helpers import (
    INVOKE,
    STREAM,
    THREADS,
    api_client,
    assert_error,
    new_user,
    running_app,
)

ORIGIN = "https://shop.example"
OTHER = "https://evil.example"
VISITOR = "/api/v1/widget/visitor"


@pytest.fixture
async def widget_app(api_settings: Settings) -> AsyncIterator[tuple[FastAPI, str, str, str]]:
    """The app with a publishable key for ORIGIN: (app, key, identity secret)."""
    async with running_app(api_settings) as app:
        key, secret, info = await app.state.keys.create_public(new_user("shop"), [ORIGIN + "/"])
        yield app, key, secret, info["partner"]


async def new_visitor(client: httpx.AsyncClient, origin: str = ORIGIN) -> dict[str, str]:
    response = await client.post(VISITOR, headers={"Origin": origin})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def as_visitor(visitor: dict[str, str]) -> dict[str, str]:
    return {"Origin": ORIGIN, "X-Visitor-Token": visitor["visitor_token"]}


async def ask(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await client.post(
        INVOKE,
        json={"message": "Quraqlıqda suvarmanı necə aparım?", "user_id": "x", **body},
        headers=headers,
    )


async def test_a_publishable_key_answers_its_origins_only(
    widget_app: tuple[FastAPI, str, str, str],
) -> None:
    app, key, _, _ = widget_app
    async with api_client(app, key=key) as client:
        missing = await client.post(VISITOR)
        other = await client.post(VISITOR, headers={"Origin": OTHER})
        visitor = await new_visitor(client)
        stolen = await ask(client, {**as_visitor(visitor), "Origin": OTHER})

    assert_error(missing, 403, "origin_not_allowed")
    assert_error(other, 403, "origin_not_allowed")
    assert_error(stolen, 403, "origin_not_allowed")
    assert visitor["user_id"].startswith("v-")


async def test_cors_preflight_is_answered_for_key_origins_only(
    widget_app: tuple[FastAPI, str, str, str],
) -> None:
    app, key, _, _ = widget_app
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, content-type, x-visitor-token",
    }
    async with api_client(app, key=None) as client:
        allowed = await client.options(STREAM, headers={"Origin": ORIGIN, **preflight})
        refused = await client.options(STREAM, headers={"Origin": OTHER, **preflight})
    async with api_client(app, key=key) as client:
        simple = await client.post(VISITOR, headers={"Origin": ORIGIN})
        foreign = await client.post(VISITOR, headers={"Origin": OTHER})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "x-visitor-token" in allowed.headers["access-control-allow-headers"].lower()
    assert refused.status_code == 400
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in foreign.headers


async def test_a_revoked_publishable_key_loses_its_origins(
    widget_app: tuple[FastAPI, str, str, str],
) -> None:
    app, _, _, _ = widget_app
    store: KeyStore = app.state.keys
    origin = f"https://{new_user('site')}.example"
    _, _, info = await store.create_public(new_user("shop"), [origin])
    assert info["origins"] == origin and info["scopes"] == "public"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with api_client(app, key=None) as client:
        before = await client.options(STREAM, headers=preflight)
        assert await store.revoke(info["id"])
        after = await client.options(STREAM, headers=preflight)
    assert before.status_code == 200
    assert after.status_code == 400


async def test_a_publishable_key_needs_a_visitor_identity(
    widget_app: tuple[FastAPI, str, str, str], api_settings: Settings
) -> None:
    app, key, _, partner = widget_app
    secret = api_settings.visitor_secret.get_secret_value()
    async with api_client(app, key=key) as client:
        visitor = await new_visitor(client)
        bare = await ask(client, {"Origin": ORIGIN})
        listed = await client.get(THREADS, params={"user_id": "x"}, headers={"Origin": ORIGIN})
        token = visitor["visitor_token"]
        forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        tampered = await ask(client, {"Origin": ORIGIN, "X-Visitor-Token": forged})
        wrong_secret, _ = issue_visitor("not-the-server-secret", partner, 1e9)
        unsigned = await ask(client, {"Origin": ORIGIN, "X-Visitor-Token": wrong_secret})
        other_partner, _ = issue_visitor(secret, "dev", 1e9)
        foreign = await ask(client, {"Origin": ORIGIN, "X-Visitor-Token": other_partner})
        expired, _ = issue_visitor(secret, partner, 1.0)
        old = await ask(client, {"Origin": ORIGIN, "X-Visitor-Token": expired})

    assert_error(bare, 401, "visitor_identity_required")
    assert_error(listed, 401, "visitor_identity_required")
    for refused in (tampered, unsigned, foreign, old):
        assert_error(refused, 401, "invalid_visitor_token")


async def test_a_visitor_reads_only_its_own_threads(
    widget_app: tuple[FastAPI, str, str, str],
) -> None:
    app, key, _, _ = widget_app
    async with api_client(app, key=key) as client:
        alice, bob = await new_visitor(client), await new_visitor(client)
        # Alice claims to be Bob in the body: the token decides.
        first = await ask(client, as_visitor(alice), user_id=bob["user_id"])
        assert first.status_code == 200, first.text
        thread_id = first.json()["thread_id"]
        mine = await client.get(
            f"{THREADS}/{thread_id}", params={"user_id": "x"}, headers=as_visitor(alice)
        )
        alices = await client.get(THREADS, params={"user_id": "x"}, headers=as_visitor(alice))
        bobs = await client.get(
            THREADS, params={"user_id": alice["user_id"]}, headers=as_visitor(bob)
        )
        peek = await client.get(
            f"{THREADS}/{thread_id}", params={"user_id": alice["user_id"]}, headers=as_visitor(bob)
        )
        # Naming Alice's thread id makes Bob a thread of his own (ids are per owner).
        hijack = await ask(client, as_visitor(bob), thread_id=thread_id, user_id=alice["user_id"])
        bobs_view = await client.get(
            f"{THREADS}/{thread_id}", params={"user_id": "x"}, headers=as_visitor(bob)
        )
        alices_after = await client.get(
            f"{THREADS}/{thread_id}", params={"user_id": "x"}, headers=as_visitor(alice)
        )
        rate = await client.post(
            f"{THREADS}/{thread_id}/feedback",
            json={"user_id": alice["user_id"], "run_id": first.json()["run_id"], "score": 1},
            headers=as_visitor(bob),
        )
        thumbs = await client.post(
            f"{THREADS}/{thread_id}/feedback",
            json={"user_id": "x", "run_id": first.json()["run_id"], "score": 5},
            headers=as_visitor(alice),
        )
        scope = await client.get(
            "/api/v1/analytics",
            params={"start_date": "2026-01-01", "end_date": "2026-01-02"},
            headers=as_visitor(alice),
        )
    async with api_client(app) as dev:
        devs = await dev.get(THREADS, params={"user_id": alice["user_id"]})

    assert mine.status_code == 200
    assert [m["role"] for m in mine.json()["messages"]] == ["user", "assistant"]
    assert [t["thread_id"] for t in alices.json()["threads"]] == [thread_id]
    assert bobs.json()["threads"] == []
    assert_error(peek, 404, "thread_not_found")
    assert hijack.status_code == 200, hijack.text
    assert len(bobs_view.json()["messages"]) == 2
    assert alices_after.json()["messages"] == mine.json()["messages"]
    assert rate.status_code == 404
    assert rate.json()["code"] in ("thread_not_found", "run_not_found")
    assert thumbs.status_code == 201, thumbs.text
    assert_error(scope, 403, "insufficient_scope")
    assert devs.json()["threads"] == []  # the visitor's threads belong to the key's partner


async def test_a_partner_names_its_logged_in_user_with_user_hash(
    widget_app: tuple[FastAPI, str, str, str],
) -> None:
    app, key, secret, _ = widget_app
    good = {
        "Origin": ORIGIN,
        "X-User-Id": "farmer-42",
        "X-User-Hash": user_hash(secret, "farmer-42"),
    }
    async with api_client(app, key=key) as client:
        answered = await ask(client, good)
        listed = await client.get(THREADS, params={"user_id": "x"}, headers=good)
        wrong = await ask(client, {**good, "X-User-Hash": user_hash("guess", "farmer-42")})
        swapped = await ask(client, {**good, "X-User-Id": "farmer-43"})
        long_id = "f" * 129
        too_long = await ask(
            client, {**good, "X-User-Id": long_id, "X-User-Hash": user_hash(secret, long_id)}
        )
        visitor = await new_visitor(client)
        as_visitor_id = await ask(
            client,
            {
                **good,
                "X-User-Id": visitor["user_id"],
                "X-User-Hash": user_hash(secret, visitor["user_id"]),
            },
        )

    assert answered.status_code == 200, answered.text
    assert [t["thread_id"] for t in listed.json()["threads"]] == [answered.json()["thread_id"]]
    for refused in (wrong, swapped, too_long, as_visitor_id):
        assert_error(refused, 401, "invalid_user_hash")


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The limiter's counters: in memory, or in the real Redis (db 15, flushed first)."""
    if request.param == "memory":
        return {}
    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()
    return {"redis_url": url}


async def test_each_visitor_has_its_own_rate_limit(
    api_settings_factory: Callable[..., Settings], counters: dict[str, Any]
) -> None:
    settings = api_settings_factory(rate_limit_per_visitor=2, rate_limit_per_minute=50, **counters)
    async with running_app(settings) as app:
        key, _, _ = await app.state.keys.create_public("shop", [ORIGIN])
        async with api_client(app, key=key) as client:
            alice, bob = await new_visitor(client), await new_visitor(client)
            lists = [
                await client.get(THREADS, params={"user_id": "x"}, headers=as_visitor(alice))
                for _ in range(3)
            ]
            other = await client.get(THREADS, params={"user_id": "x"}, headers=as_visitor(bob))

    assert [r.status_code for r in lists[:2]] == [200, 200]
    assert_error(lists[2], 429, "rate_limited")
    assert int(lists[2].headers["retry-after"]) >= 1
    assert "visitor" in lists[2].json()["detail"]
    assert other.status_code == 200
    assert other.headers["x-ratelimit-limit"] == "2"


async def test_the_widget_script_is_small_cacheable_and_served_without_a_key(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/widget.js", headers={"X-API-Key": ""})
    again = await client.get("/widget.js", headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/javascript")
    assert "max-age" in first.headers["cache-control"]
    assert len(gzip.compress(first.content, 9)) <= 30 * 1024
    assert b"attachShadow" in first.content and b"innerHTML" not in first.content
    for opener in ("ALİM söhbətini aç", "Open the ALİM chat", "Открыть чат ALİM"):
        assert opener.encode() in first.content
    assert again.status_code == 304


def test_publishable_scope_stands_alone_and_origins_are_normalized() -> None:
    with pytest.raises(InvalidRequest):
        parse_scopes("public+chat")
    assert normalize_origin("HTTPS://Shop.Example:443/") == "https://shop.example"
    assert normalize_origin("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
    for bad in ("shop.example", "https://shop.example/path", "ftp://x", "https://"):
        with pytest.raises(InvalidRequest):
            normalize_origin(bad)


async def test_production_refuses_the_default_visitor_secret_with_publishable_keys(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory(env="production")
    async with open_persistence(settings) as persistence:
        store = KeyStore(persistence.db, settings)
        await store.setup()
        await store.create_public("shop", [ORIGIN])

    with pytest.raises(ConfigError, match="ALIM_VISITOR_SECRET"):
        async with running_app(settings):
            pytest.fail("started with the development visitor secret")
    async with running_app(api_settings_factory(env="production", visitor_secret="s3cr3t-x")):
        pass
