"""`POST /api/v1/graph/invoke`: the partner contract's request and response, thread continuity,
per-run options, escalation on request, and request ids on every response."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI

from alim.offline import OFFLINE_MODEL_NAME
from alim.threads import Owner, thread_key
from tests.api.helpers import (
    INVOKE,
    SOURCE_KEYS,
    THREADS,
    ask,
    assert_error,
    history,
    new_user,
)

SEED_MESSAGE = "Fermada susuzluq var, nə edim?"  # the partner guide's example payload
FROST = "How do I protect wheat from frost?"
HUMAN = "I want to talk to an agronomist"
CONTRACT_KEYS = {
    "response",
    "thread_id",
    "model",
    "run_id",
    "route",
    "confidence",
    "escalated",
    "escalation_reason",
    "sources",
}


async def test_seed_request_gives_the_documented_response(client: httpx.AsyncClient) -> None:
    response = await client.post(
        INVOKE, json={"message": SEED_MESSAGE, "user_id": "partner_app_user_123"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert CONTRACT_KEYS <= set(body), body
    assert isinstance(body["response"], str) and body["response"].strip()
    assert body["model"] == OFFLINE_MODEL_NAME
    assert body["route"] == "agronomy"
    assert body["escalated"] is False
    assert body["escalation_reason"] is None
    assert 0 <= body["confidence"] <= 1
    uuid.UUID(body["run_id"])
    assert body["sources"], "an agronomy answer cites the knowledge base"
    for source in body["sources"]:
        assert set(source) == SOURCE_KEYS
        assert isinstance(source["id"], str) and source["id"]
        assert isinstance(source["title"], str) and source["title"]
        assert isinstance(source["score"], float)
    # The answer is about drought (the fixture article on irrigation in drought).
    assert "drought.az" in [s["id"] for s in body["sources"]]


async def test_new_thread_gets_a_server_uuid(client: httpx.AsyncClient) -> None:
    user = new_user()
    first = await ask(client, SEED_MESSAGE, user)
    second = await ask(client, SEED_MESSAGE, user)

    ids = [first["thread_id"], second["thread_id"]]
    for thread_id in ids:
        assert uuid.UUID(thread_id).version == 4
        assert str(uuid.UUID(thread_id)) == thread_id
    assert ids[0] != ids[1], "each request without thread_id starts its own thread"
    assert first["run_id"] != second["run_id"]


@pytest.mark.parametrize("thread_id", ["optional-uuid", "a.b:c-1_2"])
async def test_client_chosen_thread_id_is_kept(client: httpx.AsyncClient, thread_id: str) -> None:
    user = new_user()
    body = await ask(client, SEED_MESSAGE, user, thread_id)

    assert body["thread_id"] == thread_id
    messages = await history(client, thread_id, user)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == SEED_MESSAGE
    assert messages[1]["content"] == body["response"]


async def test_second_turn_continues_the_same_thread(client: httpx.AsyncClient) -> None:
    user = new_user()
    first = await ask(client, SEED_MESSAGE, user)
    thread_id = first["thread_id"]
    second = await ask(client, FROST, user, thread_id)

    assert second["thread_id"] == thread_id
    assert second["run_id"] != first["run_id"]
    messages = await history(client, thread_id, user)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", SEED_MESSAGE),
        ("assistant", first["response"]),
        ("user", FROST),
        ("assistant", second["response"]),
    ]
    # The assistant messages keep the sources they were given.
    assert messages[1]["sources"] == first["sources"]
    assert messages[3]["sources"] == second["sources"]


async def test_message_is_stored_trimmed(client: httpx.AsyncClient) -> None:
    user = new_user()
    body = await ask(client, f"  {FROST}\n", user)

    messages = await history(client, body["thread_id"], user)
    assert messages[0] == {**messages[0], "role": "user", "content": FROST}


async def test_profile_and_search_options_are_accepted(client: httpx.AsyncClient) -> None:
    user = new_user()
    profile = {"region": "Quba", "crops": ["alma", "buğda"], "soil": "gilli", "irrigation": "damcı"}
    body = await ask(
        client,
        SEED_MESSAGE,
        user,
        profile=profile,
        search_options={"search_type": "mmr", "k": 3, "fetch_k": 10, "lambda_mult": 0.7},
        language="az",
        metadata={"app": "test"},
    )

    assert body["route"] == "agronomy"
    assert body["response"].strip()


async def test_a_partner_s_run_metadata_cannot_replace_the_server_s(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = new_user()
    spoof = {"partner": "someone-else", "user_id": "victim", "thread_id": "t-other", "app": "x"}
    body = await ask(client, SEED_MESSAGE, user, metadata=spoof)
    key = thread_key(Owner("dev", user), body["thread_id"])
    state = await app.state.engine.graph.aget_state({"configurable": {"thread_id": key}})
    meta = state.metadata
    assert (meta["partner"], meta["user_id"]) == ("dev", user)
    assert meta["app"] == "x"  # the partner's own tags are kept


async def test_search_k_1_gives_at_most_one_source(client: httpx.AsyncClient) -> None:
    user = new_user()
    body = await ask(client, SEED_MESSAGE, user, search_options={"k": 1})

    assert body["route"] == "agronomy"
    assert len(body["sources"]) <= 1


@pytest.mark.parametrize(
    "extra",
    [
        {"profile": {"region": "Quba", "farm_size": 3}},
        {"search_options": {"k": 0}},
        {"search_options": {"k": 21}},
        {"search_options": {"search_type": "keyword"}},
        {"language": "de"},
    ],
    ids=["unknown-profile-field", "k-0", "k-21", "unknown-search-type", "unknown-language"],
)
async def test_invalid_options_are_rejected(client: httpx.AsyncClient, extra: dict) -> None:
    user = new_user()
    response = await client.post(INVOKE, json={"message": FROST, "user_id": user, **extra})

    assert_error(response, 422, "validation_error")
    listed = await client.get(THREADS, params={"user_id": user})
    assert listed.json()["threads"] == []


async def test_asking_for_a_person_escalates(client: httpx.AsyncClient) -> None:
    user = new_user()
    body = await ask(client, HUMAN, user)

    assert body["escalated"] is True
    assert body["escalation_reason"] == "user_requested"
    assert body["route"] == "human"
    assert body["sources"] == []
    assert body["response"].strip()
    assert body["model"]
    messages = await history(client, body["thread_id"], user)
    assert messages[0]["role"] == "user" and messages[0]["content"] == HUMAN


async def test_every_response_carries_a_request_id(client: httpx.AsyncClient) -> None:
    user = new_user()
    ok = await client.post(INVOKE, json={"message": FROST, "user_id": user})
    invalid = await client.post(INVOKE, json={"message": "", "user_id": user})
    unauthorized = await client.post(
        INVOKE, json={"message": FROST, "user_id": user}, headers={"X-API-Key": "nope"}
    )
    missing = await client.get(f"{THREADS}/no-such-thread", params={"user_id": user})
    unknown_route = await client.get("/api/v1/nowhere")
    health = await client.get("/health")

    ids = []
    for response in (ok, invalid, unauthorized, missing, unknown_route, health):
        request_id = response.headers.get("x-request-id")
        assert request_id, f"{response.request.url} {response.status_code} has no X-Request-ID"
        ids.append(request_id)
    assert len(set(ids)) == len(ids), "each request gets its own id"
    assert ok.status_code == 200
    assert_error(invalid, 422, "message_empty")
    assert_error(unauthorized, 401, "invalid_api_key")
    assert_error(missing, 404, "thread_not_found")
    assert_error(unknown_route, 404, "not_found")


@pytest.mark.parametrize("request_id", ["req-123", "a.b:c_D-9", "x" * 128])
async def test_well_formed_caller_request_id_is_echoed(
    client: httpx.AsyncClient, request_id: str
) -> None:
    user = new_user()
    ok = await client.post(
        INVOKE, json={"message": FROST, "user_id": user}, headers={"X-Request-ID": request_id}
    )
    failed = await client.post(
        INVOKE, json={"message": " ", "user_id": user}, headers={"X-Request-ID": request_id}
    )

    assert ok.status_code == 200
    assert ok.headers["x-request-id"] == request_id
    assert failed.headers["x-request-id"] == request_id
    assert assert_error(failed, 422, "message_empty")["request_id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["has space", "x" * 129, "semi;colon", "<script>"],
    ids=["space", "129-chars", "semicolon", "markup"],
)
async def test_malformed_caller_request_id_is_replaced(
    client: httpx.AsyncClient, request_id: str
) -> None:
    response = await client.post(
        INVOKE,
        json={"message": FROST, "user_id": new_user()},
        headers={"X-Request-ID": request_id},
    )

    assert response.status_code == 200
    echoed = response.headers["x-request-id"]
    assert echoed and echoed != request_id
    assert len(echoed) <= 128 and " " not in echoed
