"""Threads belong to (partner key, user_id): a thread_id is only a name inside that space, so
nobody else can read, delete, list or write into another owner's thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import THREADS, api_client, ask, assert_error, history, new_user

FIRST = "Fermada susuzluq var, nə edim?"
SECOND = "How do I protect wheat from frost?"
INTRUDER = "I want to talk to an agronomist"
THREAD = "shared-name"


@dataclass
class Partners:
    acme: httpx.AsyncClient
    globex: httpx.AsyncClient


@pytest.fixture
async def partners(app: FastAPI) -> AsyncIterator[Partners]:
    acme_key, _ = await app.state.keys.create("acme", "chat")
    globex_key, _ = await app.state.keys.create("globex", "chat")
    async with api_client(app, acme_key) as acme, api_client(app, globex_key) as globex:
        yield Partners(acme, globex)


async def test_same_thread_id_under_another_key_is_another_thread(partners: Partners) -> None:
    user = new_user()
    victim = await ask(partners.acme, FIRST, user, THREAD)

    missing = await partners.globex.get(f"{THREADS}/{THREAD}", params={"user_id": user})
    assert_error(missing, 404, "thread_not_found")
    other = await ask(partners.globex, SECOND, user, THREAD)

    assert other["thread_id"] == THREAD
    assert [(m["role"], m["content"]) for m in await history(partners.globex, THREAD, user)] == [
        ("user", SECOND),
        ("assistant", other["response"]),
    ]
    assert [(m["role"], m["content"]) for m in await history(partners.acme, THREAD, user)] == [
        ("user", FIRST),
        ("assistant", victim["response"]),
    ]


async def test_same_thread_id_under_another_user_is_another_thread(partners: Partners) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    first = await ask(partners.acme, FIRST, alice, THREAD)

    missing = await partners.acme.get(f"{THREADS}/{THREAD}", params={"user_id": bob})
    assert_error(missing, 404, "thread_not_found")
    second = await ask(partners.acme, SECOND, bob, THREAD)

    assert [m["content"] for m in await history(partners.acme, THREAD, bob)] == [
        SECOND,
        second["response"],
    ]
    assert [m["content"] for m in await history(partners.acme, THREAD, alice)] == [
        FIRST,
        first["response"],
    ]


async def test_another_owner_cannot_read_or_delete_a_thread(
    partners: Partners, client: httpx.AsyncClient
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    await ask(partners.acme, FIRST, alice, THREAD)
    before = await history(partners.acme, THREAD, alice)
    path = f"{THREADS}/{THREAD}"

    attempts = {
        "other key, same user: GET": await partners.globex.get(path, params={"user_id": alice}),
        "other key, same user: DELETE": await partners.globex.delete(
            path, params={"user_id": alice}
        ),
        "same key, other user: GET": await partners.acme.get(path, params={"user_id": bob}),
        "same key, other user: DELETE": await partners.acme.delete(path, params={"user_id": bob}),
        "dev key: GET": await client.get(path, params={"user_id": alice}),
        "dev key: DELETE": await client.delete(path, params={"user_id": alice}),
    }

    never = await partners.acme.get(f"{THREADS}/never-created", params={"user_id": alice})
    expected = assert_error(never, 404, "thread_not_found")["detail"]
    for what, response in attempts.items():
        body = assert_error(response, 404, "thread_not_found")
        assert body["detail"] == expected, f"{what} reveals that the thread exists"
    assert await history(partners.acme, THREAD, alice) == before


async def test_posting_to_another_owners_thread_leaves_it_untouched(partners: Partners) -> None:
    alice, mallory = new_user("alice"), new_user("mallory")
    await ask(partners.acme, FIRST, alice, THREAD)
    await ask(partners.acme, SECOND, alice, THREAD)
    before = await history(partners.acme, THREAD, alice)
    assert len(before) == 4

    await ask(partners.globex, INTRUDER, alice, THREAD)  # another key, the victim's user id
    await ask(partners.acme, INTRUDER, mallory, THREAD)  # the victim's key, another user

    assert await history(partners.acme, THREAD, alice) == before
    listed = (await partners.acme.get(THREADS, params={"user_id": alice})).json()["threads"]
    assert [(t["thread_id"], t["title"], t["message_count"]) for t in listed] == [
        (THREAD, FIRST, 4)
    ]


async def test_thread_list_shows_only_the_owners_threads_newest_first(
    partners: Partners,
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    older = await ask(partners.acme, FIRST, alice)
    newer = await ask(partners.acme, SECOND, alice, "second-thread")
    await ask(partners.acme, INTRUDER, bob)  # same key, another user
    await ask(partners.globex, INTRUDER, alice)  # same user id, another key

    response = await partners.acme.get(THREADS, params={"user_id": alice})

    assert response.status_code == 200
    threads = response.json()["threads"]
    assert [t["thread_id"] for t in threads] == [newer["thread_id"], older["thread_id"]]
    assert [t["title"] for t in threads] == [SECOND, FIRST]
    assert [t["message_count"] for t in threads] == [2, 2]
    assert threads[0]["updated_at"] >= threads[1]["updated_at"]
    for t in threads:
        assert t["status"] == "active"
        assert t["created_at"] <= t["updated_at"]

    # A new turn on the older thread moves it to the top, with its new message count.
    await ask(partners.acme, SECOND, alice, older["thread_id"])
    threads = (await partners.acme.get(THREADS, params={"user_id": alice})).json()["threads"]
    assert [(t["thread_id"], t["title"], t["message_count"]) for t in threads] == [
        (older["thread_id"], FIRST, 4),
        (newer["thread_id"], SECOND, 2),
    ]
    globex = (await partners.globex.get(THREADS, params={"user_id": alice})).json()["threads"]
    assert [t["title"] for t in globex] == [INTRUDER]
