"""Thread list, history and deletion (deletion removes the checkpoints too)."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI

from tests.api.helpers import THREADS, ask, assert_error, history, new_user, thread_list

FIRST = "Fermada susuzluq var, nə edim?"
SECOND = "How do I protect wheat from frost?"
THIRD = "Как защитить пшеницу от заморозков?"


async def test_new_user_has_no_threads(client: httpx.AsyncClient) -> None:
    response = await client.get(THREADS, params={"user_id": new_user()})

    assert response.status_code == 200
    assert response.json() == {"threads": []}


async def test_list_pages_newest_first(client: httpx.AsyncClient) -> None:
    user = new_user()
    ids = [(await ask(client, message, user))["thread_id"] for message in (FIRST, SECOND, THIRD)]
    newest_first = ids[::-1]

    everything = await thread_list(client, user)
    first_page = await client.get(THREADS, params={"user_id": user, "limit": 2})
    second_page = await client.get(THREADS, params={"user_id": user, "limit": 2, "offset": 2})

    assert [t["thread_id"] for t in everything] == newest_first
    assert [t["title"] for t in everything] == [THIRD, SECOND, FIRST]
    assert [t["thread_id"] for t in first_page.json()["threads"]] == newest_first[:2]
    assert [t["thread_id"] for t in second_page.json()["threads"]] == newest_first[2:]


async def test_list_rejects_bad_paging_and_missing_user(client: httpx.AsyncClient) -> None:
    user = new_user()
    for params in (
        {"user_id": user, "limit": 0},
        {"user_id": user, "limit": 101},
        {"user_id": user, "offset": -1},
        {},
    ):
        assert_error(await client.get(THREADS, params=params), 422, "validation_error")


async def test_history_is_oldest_first_with_times_and_sources(client: httpx.AsyncClient) -> None:
    user = new_user()
    first = await ask(client, FIRST, user)
    thread_id = first["thread_id"]
    second = await ask(client, SECOND, user, thread_id)

    response = await client.get(f"{THREADS}/{thread_id}", params={"user_id": user})

    assert response.status_code == 200
    detail = response.json()
    assert detail["thread_id"] == thread_id
    assert detail["title"] == FIRST
    assert detail["status"] == "active"
    messages = detail["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", FIRST),
        ("assistant", first["response"]),
        ("user", SECOND),
        ("assistant", second["response"]),
    ]
    times = [m["created_at"] for m in messages]
    assert all(times) and times == sorted(times)
    assert [m["sources"] for m in messages[1::2]] == [first["sources"], second["sources"]]


async def test_history_of_unknown_thread_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{THREADS}/does-not-exist", params={"user_id": new_user()})

    assert_error(response, 404, "thread_not_found")


async def test_delete_removes_the_thread(client: httpx.AsyncClient) -> None:
    user = new_user()
    kept = await ask(client, FIRST, user)
    gone = await ask(client, SECOND, user)
    path = f"{THREADS}/{gone['thread_id']}"

    deleted = await client.delete(path, params={"user_id": user})

    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(await client.get(path, params={"user_id": user}), 404, "thread_not_found")
    assert [t["thread_id"] for t in await thread_list(client, user)] == [kept["thread_id"]]
    again = await client.delete(path, params={"user_id": user})
    assert_error(again, 404, "thread_not_found")
    # The other thread is intact.
    assert len(await history(client, kept["thread_id"], user)) == 2


async def test_delete_removes_the_checkpoints(client: httpx.AsyncClient) -> None:
    """After deletion the same thread_id starts from nothing: no earlier message comes back."""
    user = new_user()
    thread_id = "reused-thread"
    await ask(client, FIRST, user, thread_id)
    await ask(client, SECOND, user, thread_id)
    assert len(await history(client, thread_id, user)) == 4

    deleted = await client.delete(f"{THREADS}/{thread_id}", params={"user_id": user})
    assert deleted.status_code == 204
    fresh = await ask(client, THIRD, user, thread_id)

    assert fresh["thread_id"] == thread_id
    assert [(m["role"], m["content"]) for m in await history(client, thread_id, user)] == [
        ("user", THIRD),
        ("assistant", fresh["response"]),
    ]
    listed = await thread_list(client, user)
    assert [(t["thread_id"], t["title"], t["message_count"]) for t in listed] == [
        (thread_id, THIRD, 2)
    ]


async def test_delete_removes_the_feedback_comment_everywhere(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A farmer's feedback comment is conversation text: deleting the thread erases it from the
    feedback table and from pending webhook deliveries (which carry ids only)."""
    user = new_user()
    hook = await client.post(
        "/api/v1/webhooks",
        json={"url": "http://127.0.0.1:9/hook", "events": ["feedback.submitted"]},
    )
    assert hook.status_code == 201, hook.text
    turn = await ask(client, FIRST, user)
    secret_words = f"komment-{uuid.uuid4().hex}"
    rated = await client.post(
        f"{THREADS}/{turn['thread_id']}/feedback",
        json={"user_id": user, "run_id": turn["run_id"], "score": 2, "comment": secret_words},
    )
    assert rated.status_code == 201, rated.text
    db = app.state.engine.persistence.db

    async def traces() -> list[str]:
        rows = await db.fetch_all("SELECT comment AS text FROM alim_feedback")
        rows += await db.fetch_all("SELECT payload AS text FROM alim_outbox")
        return [str(r["text"]) for r in rows if secret_words in str(r["text"])]

    assert len(await traces()) == 1  # stored with the feedback, never in the outbox
    deleted = await client.delete(f"{THREADS}/{turn['thread_id']}", params={"user_id": user})
    assert deleted.status_code == 204
    assert await traces() == []
