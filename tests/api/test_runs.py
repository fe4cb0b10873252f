"""Durable runs over real HTTP (uvicorn on 127.0.0.1, one server per backend for the module):
event ids, run status, resuming with Last-Event-ID, cancelling, ownership, idempotent sends.

The offline model streams slowly here (ALIM_OFFLINE_DELAY), so a test can act mid-answer."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from alim.client import AlimClient, AsyncAlimClient
from alim.events import DoneEvent, MetadataEvent, SourcesEvent, TokenEvent
from alim.settings import DEV_API_KEY
from api.app import create_app
from engine import GraphDeps
from tests.conftest import make_settings
from tests.support.fakes import HashingEmbeddings
from tests.support.proxy import CuttingProxy
from tests.support.servers import serve_in_thread

STREAM = "/api/v1/graph/stream"
INVOKE = "/api/v1/graph/invoke"
RUNS = "/api/v1/runs"
QUESTION = "Quraqlıqda suvarmanı necə aparım?"
OTHER_KEY = "other-partner-key-0000000000"  # pragma: allowlist secret


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    values: dict[str, Any] = {
        "checkpointer": request.param,
        "offline_delay": 0.04,  # a run lasts ~1 s: long enough to act on it mid-answer
        "api_keys": [f"dev:{DEV_API_KEY}:chat+agent+admin", f"other:{OTHER_KEY}:chat"],
    }
    if request.param == "postgres":
        values["postgres_url"] = request.getfixturevalue("postgres_url")
    settings = make_settings(tmp_path_factory.mktemp(f"runs-{request.param}"), **values)
    app = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server, headers={"X-API-Key": DEV_API_KEY}, timeout=30, trust_env=False
    ) as c:
        yield c


def new_user() -> str:
    return f"runs-{uuid.uuid4().hex[:12]}"


def stream(
    c: httpx.Client, method: str, url: str, *, stop_after: int | None = None, **kw: Any
) -> tuple[int, httpx.Headers, list[ServerSentEvent]]:
    """Open an SSE stream and read it (all of it, or `stop_after` events, then hang up)."""
    events: list[ServerSentEvent] = []
    with connect_sse(c, method, url, **kw) as source:
        if source.response.status_code != 200:
            source.response.read()
            return source.response.status_code, source.response.headers, []
        for event in source.iter_sse():
            events.append(event)
            if stop_after is not None and len(events) >= stop_after:
                break
        return 200, source.response.headers, events


def run_id_of(events: list[ServerSentEvent]) -> str:
    assert events[0].event == "metadata"
    return str(json.loads(events[0].data)["run_id"])


def answer(events: list[ServerSentEvent]) -> str:
    return "".join(e.data for e in events if e.event == "token")


def history(c: httpx.Client, thread_id: str, user: str) -> list[dict[str, Any]]:
    r = c.get(f"/api/v1/threads/{thread_id}", params={"user_id": user})
    assert r.status_code == 200, r.text
    return list(r.json()["messages"])


def test_every_event_carries_the_run_id_and_its_sequence_number(client: httpx.Client) -> None:
    user = new_user()
    status, _, events = stream(client, "POST", STREAM, json={"message": QUESTION, "user_id": user})
    assert status == 200
    run_id = run_id_of(events)
    assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
    assert [e.event for e in events][-2:] == ["sources", "done"]


def test_a_finished_run_reports_its_result_and_replays_from_any_event(
    client: httpx.Client,
) -> None:
    user = new_user()
    _, _, events = stream(client, "POST", STREAM, json={"message": QUESTION, "user_id": user})
    run_id = run_id_of(events)
    thread_id = json.loads(events[0].data)["thread_id"]

    status = client.get(f"{RUNS}/{run_id}", params={"user_id": user})
    assert status.status_code == 200, status.text
    run = status.json()
    assert (run["status"], run["thread_id"], run["error"]) == ("success", thread_id, None)
    assert run["result"]["response"] == answer(events)
    assert run["result"]["response"] == history(client, thread_id, user)[-1]["content"]
    assert run["result"]["sources"] == json.loads(events[-2].data)["sources"]

    middle = len(events) // 2
    by_header: tuple[dict[str, Any], dict[str, str]] = (
        {},
        {"Last-Event-ID": events[middle - 1].id},
    )
    by_query: tuple[dict[str, Any], dict[str, str]] = ({"after": middle}, {})
    for params, headers in (by_header, by_query):
        _, _, rest = stream(
            client,
            "GET",
            f"{RUNS}/{run_id}/stream",
            params={"user_id": user, **params},
            headers=headers,
        )
        assert [(e.id, e.event, e.data) for e in rest] == [
            (e.id, e.event, e.data) for e in events[middle:]
        ]


def test_a_stream_cut_mid_answer_is_resumed_without_a_gap_or_a_repeat(
    client: httpx.Client,
) -> None:
    user = new_user()
    body = {"message": QUESTION, "user_id": user}
    _, _, first = stream(client, "POST", STREAM, json=body, stop_after=5)  # then hang up
    run_id = run_id_of(first)
    _, _, rest = stream(
        client,
        "GET",
        f"{RUNS}/{run_id}/stream",
        params={"user_id": user},
        headers={"Last-Event-ID": first[-1].id},
    )
    events = first + rest
    assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
    assert events[-1].event == "done" and events[-2].event == "sources"
    thread_id = json.loads(first[0].data)["thread_id"]
    # The run went on without its connection: the whole answer is in the thread, once.
    messages = history(client, thread_id, user)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[-1]["content"] == answer(events)


def test_a_cancelling_stream_that_is_cut_stops_its_run(client: httpx.Client) -> None:
    user = new_user()
    body = {"message": QUESTION, "user_id": user, "on_disconnect": "cancel"}
    _, _, first = stream(client, "POST", STREAM, json=body, stop_after=4)
    run_id = run_id_of(first)
    _, _, rest = stream(
        client, "GET", f"{RUNS}/{run_id}/stream", params={"user_id": user, "after": 4}
    )
    assert [e.event for e in rest][-2:] == ["error", "done"]
    assert json.loads(rest[-2].data)["code"] == "cancelled"
    run = client.get(f"{RUNS}/{run_id}", params={"user_id": user}).json()
    assert (run["status"], run["result"], run["error"]["code"]) == ("cancelled", None, "cancelled")
    thread_id = json.loads(first[0].data)["thread_id"]
    assert [m["role"] for m in history(client, thread_id, user)] == ["user"]  # no half answer


def test_cancel_stops_a_live_run_and_frees_its_thread(client: httpx.Client) -> None:
    user, thread_id = new_user(), f"t-{uuid.uuid4().hex[:8]}"
    body = {"message": QUESTION, "user_id": user, "thread_id": thread_id}
    with connect_sse(client, "POST", STREAM, json=body) as source:
        events = source.iter_sse()
        run_id = run_id_of([next(events)])
        next(events)
        cancelled = client.post(f"{RUNS}/{run_id}/cancel", params={"user_id": user})
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        tail = list(events)
    assert [e.event for e in tail][-2:] == ["error", "done"]
    assert json.loads(tail[-2].data)["code"] == "cancelled"
    assert "sources" not in [e.event for e in tail]
    again = client.post(INVOKE, json=body)
    assert again.status_code == 200, again.text  # the thread is free
    # The cancelled turn left its question, not half an answer.
    assert [m["role"] for m in history(client, thread_id, user)] == ["user", "user", "assistant"]
    # Cancelling a run that has ended changes nothing.
    late = client.post(f"{RUNS}/{run_id}/cancel", params={"user_id": user})
    assert (late.status_code, late.json()["status"]) == (200, "cancelled")


def test_runs_are_visible_to_their_owner_only(server: str, client: httpx.Client) -> None:
    user = new_user()
    _, _, events = stream(client, "POST", STREAM, json={"message": QUESTION, "user_id": user})
    run_id = run_id_of(events)
    with httpx.Client(base_url=server, headers={"X-API-Key": OTHER_KEY}, trust_env=False) as other:
        for c, owner in ((client, new_user()), (other, user)):
            for method, url in (
                ("GET", f"{RUNS}/{run_id}"),
                ("GET", f"{RUNS}/{run_id}/stream"),
                ("POST", f"{RUNS}/{run_id}/cancel"),
            ):
                r = c.request(method, url, params={"user_id": owner})
                assert (r.status_code, r.json()["code"]) == (404, "run_not_found"), (method, url)
    r = client.get(f"{RUNS}/no-such-run", params={"user_id": user})
    assert (r.status_code, r.json()["code"]) == (404, "run_not_found")


def test_a_malformed_last_event_id_is_refused(client: httpx.Client) -> None:
    user = new_user()
    _, _, events = stream(client, "POST", STREAM, json={"message": QUESTION, "user_id": user})
    run_id = run_id_of(events)
    for value in ("other-run:3", "three", f"{run_id}:-1"):
        r = client.get(
            f"{RUNS}/{run_id}/stream", params={"user_id": user}, headers={"Last-Event-ID": value}
        )
        assert (r.status_code, r.json()["code"]) == (422, "invalid_last_event_id"), value


def test_a_repeated_invoke_returns_the_first_answer_and_adds_no_turn(client: httpx.Client) -> None:
    user = new_user()
    body = {"message": QUESTION, "user_id": user}
    headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first = client.post(INVOKE, json=body, headers=headers)
    again = client.post(INVOKE, json=body, headers=headers)
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json()
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    messages = history(client, first.json()["thread_id"], user)
    assert [m["role"] for m in messages] == ["user", "assistant"]

    other = client.post(INVOKE, json={**body, "message": "Başqa sual"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    bad = client.post(INVOKE, json=body, headers={"Idempotency-Key": "has space"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_idempotency_key")


def test_concurrent_sends_with_one_key_run_once(client: httpx.Client) -> None:
    user, thread_id = new_user(), f"t-{uuid.uuid4().hex[:8]}"
    body = {"message": QUESTION, "user_id": user, "thread_id": thread_id}
    headers = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    results: list[httpx.Response] = []

    def send() -> None:
        results.append(client.post(INVOKE, json=body, headers=headers))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = [r for r in results if r.status_code == 200]
    assert ok and all(
        r.status_code == 200 or r.json()["code"] == "idempotency_in_progress" for r in results
    ), [r.text for r in results]
    assert len({r.json()["run_id"] for r in ok}) == 1
    assert [m["role"] for m in history(client, thread_id, user)] == ["user", "assistant"]


def test_a_repeated_stream_with_last_event_id_resumes_the_same_run(client: httpx.Client) -> None:
    user = new_user()
    body = {"message": QUESTION, "user_id": user}
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    _, headers, first = stream(client, "POST", STREAM, json=body, headers=key, stop_after=3)
    assert "idempotent-replayed" not in headers
    _, headers, rest = stream(
        client, "POST", STREAM, json=body, headers={**key, "Last-Event-ID": first[-1].id}
    )
    assert headers["idempotent-replayed"] == "true"
    events = first + rest
    run_id = run_id_of(first)
    assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
    assert events[-1].event == "done"
    thread_id = json.loads(first[0].data)["thread_id"]
    assert [m["role"] for m in history(client, thread_id, user)] == ["user", "assistant"]


def test_a_refused_send_releases_its_key(client: httpx.Client) -> None:
    user = new_user()
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    empty = client.post(INVOKE, json={"message": "   ", "user_id": user}, headers=key)
    assert (empty.status_code, empty.json()["code"]) == (422, "message_empty")
    # The refused request started nothing: the same key now runs a corrected message.
    ok = client.post(INVOKE, json={"message": QUESTION, "user_id": user}, headers=key)
    assert ok.status_code == 200, ok.text


def test_the_python_client_resumes_a_stream_its_network_dropped(server: str) -> None:
    user = new_user()
    port = int(server.rsplit(":", 1)[1])
    with (
        CuttingProxy(port, cuts=[900, 700, None]).running() as proxy,
        AlimClient(proxy.url, DEV_API_KEY, timeout=30, max_retries=3) as alim,
    ):
        events = list(alim.stream(QUESTION, user_id=user))
        assert proxy.cut == 2 and proxy.connections >= 3
        meta = events[0]
        assert isinstance(meta, MetadataEvent)
        assert isinstance(events[-1], DoneEvent) and isinstance(events[-2], SourcesEvent)
        text = "".join(e.text for e in events if isinstance(e, TokenEvent))
        thread = alim.threads.get(meta.thread_id, user)
    # One turn, and the tokens the caller got are the stored answer, byte for byte.
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant"]
    assert thread["messages"][-1]["content"] == text


async def test_the_async_client_resumes_too_and_its_sends_are_idempotent(server: str) -> None:
    user = new_user()
    port = int(server.rsplit(":", 1)[1])
    with CuttingProxy(port, cuts=[800, None]).running() as proxy:
        async with AsyncAlimClient(proxy.url, DEV_API_KEY, timeout=30) as alim:
            events = [e async for e in alim.stream(QUESTION, user_id=user)]
            assert proxy.cut == 1
            meta = events[0]
            assert isinstance(meta, MetadataEvent) and isinstance(events[-1], DoneEvent)
            text = "".join(e.text for e in events if isinstance(e, TokenEvent))
            thread = await alim.threads.get(meta.thread_id, user)
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant"]
    assert thread["messages"][-1]["content"] == text


def test_an_invoke_whose_answer_was_lost_is_resent_without_a_second_turn(server: str) -> None:
    user = new_user()
    port = int(server.rsplit(":", 1)[1])
    # The first answer is cut after its headers: the client resends with the same key.
    with (
        CuttingProxy(port, cuts=[200, None]).running() as proxy,
        AlimClient(proxy.url, DEV_API_KEY, timeout=30, max_retries=2) as alim,
    ):
        result = alim.invoke(QUESTION, user_id=user)
        assert proxy.cut == 1
        thread = alim.threads.get(result.thread_id, user)
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant"]
    assert thread["messages"][-1]["content"] == result.response


def test_a_repeated_reply_feedback_or_article_acts_once(client: httpx.Client) -> None:
    user = new_user()
    asked = client.post(
        INVOKE, json={"message": "Mənə aqronomla danışmaq lazımdır", "user_id": user}
    )
    assert asked.status_code == 200, asked.text
    escalation_id, thread_id = asked.json()["escalation_id"], asked.json()["thread_id"]
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    reply = {"answer": "Sabah saat 10-da zəng edəcəyəm.", "agent_id": "ag-1"}
    url = f"/api/v1/escalations/{escalation_id}/reply"
    first, again = (client.post(url, json=reply, headers=key) for _ in range(2))
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    answers = [m for m in history(client, thread_id, user) if m["role"] == "assistant"]
    assert [m["content"] for m in answers] == [reply["answer"]]
    # Without the key, a second reply is refused: the first was not applied twice.
    assert client.post(url, json=reply).status_code == 409

    rating = {"user_id": user, "run_id": asked.json()["run_id"], "score": 4}
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    url = f"/api/v1/threads/{thread_id}/feedback"
    first, again = (client.post(url, json=rating, headers=key) for _ in range(2))
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json()["id"] == first.json()["id"] and "idempotent-replayed" in again.headers

    title = f"Idempotent note {uuid.uuid4().hex[:6]}"
    article = {
        "title": title,
        "content": "Mulch keeps moisture in the soil during dry summer weeks and cools the roots.",
        "language": "en",
    }
    key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    first, again = (client.post("/api/v1/knowledge", json=article, headers=key) for _ in range(2))
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json() and "idempotent-replayed" in again.headers
    listed = client.get("/api/v1/knowledge", params={"limit": 100}).json()
    assert [a["title"] for a in listed["articles"]].count(title) == 1


def test_enqueued_sends_wait_their_turn_in_arrival_order(client: httpx.Client) -> None:
    user, thread_id = new_user(), f"t-{uuid.uuid4().hex[:8]}"
    questions = [f"{QUESTION} ({n})" for n in range(1, 6)]
    firsts: list[ServerSentEvent] = []
    with contextlib.ExitStack() as stack:
        sources = []
        for question in questions:  # five rapid sends: each stream opens at once
            body = {
                "message": question,
                "user_id": user,
                "thread_id": thread_id,
                "multitask_strategy": "enqueue",
            }
            source = stack.enter_context(connect_sse(client, "POST", STREAM, json=body))
            assert source.response.status_code == 200, source.response.read()
            events = source.iter_sse()
            firsts.append(next(events))
            sources.append(events)
        streams = [[first, *events] for first, events in zip(firsts, sources, strict=True)]
    # The first ran at once; the others reported `queued`, then ran after it.
    assert firsts[0].event == "metadata"
    assert [f.event for f in firsts[1:]] == ["queued"] * 4
    for events in streams:
        assert [e.event for e in events][-2:] == ["sources", "done"]
    messages = history(client, thread_id, user)
    assert [m["content"] for m in messages if m["role"] == "user"] == questions
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert answers == [answer(events) for events in streams]
    queued = client.get(f"{RUNS}/{json.loads(firsts[-1].data)['run_id']}", params={"user_id": user})
    assert queued.json()["status"] == "success"


def test_reject_stays_the_default_for_a_busy_thread(client: httpx.Client) -> None:
    user, thread_id = new_user(), f"t-{uuid.uuid4().hex[:8]}"
    body = {"message": QUESTION, "user_id": user, "thread_id": thread_id}
    with connect_sse(client, "POST", STREAM, json=body) as source:
        events = source.iter_sse()
        next(events)
        busy = client.post(INVOKE, json=body)
        list(events)
    assert (busy.status_code, busy.json()["code"]) == (409, "thread_busy")


def test_deleting_a_thread_deletes_its_runs_and_their_events(client: httpx.Client) -> None:
    user = new_user()
    _, _, events = stream(client, "POST", STREAM, json={"message": QUESTION, "user_id": user})
    run_id, thread_id = run_id_of(events), json.loads(events[0].data)["thread_id"]
    deleted = client.delete(f"/api/v1/threads/{thread_id}", params={"user_id": user})
    assert deleted.status_code == 204, deleted.text
    for url in (f"{RUNS}/{run_id}", f"{RUNS}/{run_id}/stream"):
        r = client.get(url, params={"user_id": user})
        assert (r.status_code, r.json()["code"]) == (404, "run_not_found")
