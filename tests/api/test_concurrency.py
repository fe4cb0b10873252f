"""One run per thread at a time: a second turn on a busy thread is 409 `thread_busy` at once, other
threads are unaffected, and the thread is free again when the run ends.

The app is served by a real uvicorn server here (slowed offline model): httpx's in-process ASGI
transport buffers a whole response, so a stream could not be held open half-read with it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from alim.settings import DEV_API_KEY, Settings
from api.app import create_app
from engine import GraphDeps
from tests.api.helpers import INVOKE, STREAM, THREADS, assert_error, new_user
from tests.support.fakes import HashingEmbeddings
from tests.support.servers import serve_in_thread

FIRST = "Fermada susuzluq var, nə edim?"
SECOND = "How do I protect wheat from frost?"
REJECTED = "I want to talk to an agronomist"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server_url(api_settings_factory: Callable[..., Settings]) -> Iterator[str]:
    # A run no longer waits for its reader (it outlives the connection), so the stream must last
    # long enough (~3 s) for the requests a test sends while it runs, also on a loaded machine.
    settings = api_settings_factory(offline_delay=0.12)
    application = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    with serve_in_thread(application) as url:
        yield url


@pytest.fixture
async def http(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=server_url, headers={"X-API-Key": DEV_API_KEY}, timeout=30
    ) as c:
        yield c


async def until_first_token(events: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    seen = []
    async for sse in events:
        seen.append(sse)
        if sse.event == "token":
            return seen
    raise AssertionError(f"the stream ended without a token: {[s.event for s in seen]}")


def turn(user: str, thread_id: str, message: str = SECOND) -> dict[str, Any]:
    return {"message": message, "user_id": user, "thread_id": thread_id}


async def test_busy_thread_is_409_while_other_threads_run(http: httpx.AsyncClient) -> None:
    user = new_user()
    async with aconnect_sse(http, "POST", STREAM, json=turn(user, "busy", FIRST)) as source:
        assert source.response.status_code == 200
        events = source.aiter_sse()
        head = await until_first_token(events)

        busy_invoke = await http.post(INVOKE, json=turn(user, "busy", REJECTED))
        busy_stream = await http.post(STREAM, json=turn(user, "busy", REJECTED))
        busy_delete = await http.delete(f"{THREADS}/busy", params={"user_id": user})
        other_thread = await http.post(INVOKE, json=turn(user, "elsewhere"))
        other_user = await http.post(INVOKE, json=turn(new_user(), "busy"))

        rest = [sse async for sse in events]

    assert json.loads(head[0].data)["thread_id"] == "busy"
    for response in (busy_invoke, busy_stream, busy_delete):
        assert_error(response, 409, "thread_busy")
        assert response.headers["content-type"].startswith("application/json")
    assert other_thread.status_code == 200, other_thread.text
    assert other_thread.json()["response"].strip()
    assert other_user.status_code == 200, "the same thread_id of another owner is not busy"

    # The first stream was not disturbed: it ran to the end.
    names = [s.event for s in head + rest]
    assert names[-2:] == ["sources", "done"]
    answer = "".join(s.data for s in head + rest if s.event == "token")

    # The thread is free again; the rejected turns left no trace.
    after = await http.post(INVOKE, json=turn(user, "busy", SECOND))
    assert after.status_code == 200, after.text
    detail = await http.get(f"{THREADS}/busy", params={"user_id": user})
    assert [(m["role"], m["content"]) for m in detail.json()["messages"]] == [
        ("user", FIRST),
        ("assistant", answer),
        ("user", SECOND),
        ("assistant", after.json()["response"]),
    ]


async def test_two_streams_on_different_threads_run_together(http: httpx.AsyncClient) -> None:
    user = new_user()
    async with (
        aconnect_sse(http, "POST", STREAM, json=turn(user, "one", FIRST)) as first,
        aconnect_sse(http, "POST", STREAM, json=turn(user, "two", SECOND)) as second,
    ):
        first_events, second_events = first.aiter_sse(), second.aiter_sse()
        await until_first_token(first_events)
        await until_first_token(second_events)  # both are mid-answer now
        first_rest = [s.event async for s in first_events]
        second_rest = [s.event async for s in second_events]

    assert first_rest[-2:] == ["sources", "done"]
    assert second_rest[-2:] == ["sources", "done"]
    listed = await http.get(THREADS, params={"user_id": user})
    assert {t["thread_id"]: t["message_count"] for t in listed.json()["threads"]} == {
        "one": 2,
        "two": 2,
    }


async def test_client_leaving_mid_stream_frees_the_thread(http: httpx.AsyncClient) -> None:
    user = new_user()
    async with aconnect_sse(http, "POST", STREAM, json=turn(user, "left", FIRST)) as source:
        await until_first_token(source.aiter_sse())
    # The connection is closed. The thread must become usable again (hang = failure by timeout).
    while True:
        response = await http.post(INVOKE, json=turn(user, "left", SECOND))
        if response.status_code != 409:
            break
        await asyncio.sleep(0.1)  # stays far below the per-key rate limit
    assert response.status_code == 200, response.text
