"""The agronomists' inbox API (`agent` scope): the queue oldest first with its filters, one
escalation in detail with a draft, closing without an answer, keeping the conversation with the
expert, the live stream of changes (resumable), hand-off analytics, and what an agent key may
not do. Over SQLite and PostgreSQL (the `client` fixture)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alim.handoff_stats import percentile, summarize
from alim.i18n import text
from alim.settings import Settings
from api.app import create_app
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
)
from tests.support.fakes import HashingEmbeddings
from tests.support.servers import serve_in_thread

ESCALATIONS = "/api/v1/escalations"
QUEUE = f"{ESCALATIONS}/queue"
EVENTS = f"{ESCALATIONS}/events"
ASK_HUMAN_AZ = "Pomidorda yarpaqlar saralır, aqronomla danışmaq istəyirəm"
ASK_HUMAN_RU = "Хочу поговорить с агрономом о винограде"
EXPERT = "Yarpaqları yoxlayın: azot çatışmazlığıdır, karbamid verin."


async def escalate(
    client: httpx.AsyncClient, user: str, message: str = ASK_HUMAN_AZ, **extra: Any
) -> dict[str, Any]:
    body = await ask(client, message, user, **extra)
    assert body["escalated"] is True, body
    return body


async def queue(client: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    response = await client.get(QUEUE, params=filters)
    assert response.status_code == 200, response.text
    return response.json()["escalations"]  # type: ignore[no-any-return]


async def partner_client(app: FastAPI, scopes: list[str]) -> tuple[str, str]:
    name = f"inbox-{new_user()}"
    key, _ = await app.state.keys.create(name, scopes)
    return name, key


async def test_the_queue_is_open_escalations_oldest_first_with_filters(app: FastAPI) -> None:
    _, key = await partner_client(app, ["chat", "agent"])
    async with api_client(app, key) as client:
        first = await escalate(
            client, new_user(), profile={"region": "Quba", "crops": ["alma", "armud"]}
        )
        second = await escalate(client, new_user(), ASK_HUMAN_RU, profile={"region": "Şəki"})
        answered = await escalate(client, new_user())
        reply = await client.post(
            f"{ESCALATIONS}/{answered['escalation_id']}/reply",
            json={"answer": EXPERT, "agent_id": "a1"},
        )
        assert reply.status_code == 200, reply.text

        items = await queue(client)
        assert [e["id"] for e in items] == [first["escalation_id"], second["escalation_id"]]
        head = items[0]
        assert head["region"] == "Quba" and head["crops"] == ["alma", "armud"]
        assert head["language"] == "az" and head["route"] == "human"
        assert head["reason"] == "user_requested" and head["status"] == "open"
        assert items[1]["language"] == "ru" and items[1]["region"] == "Şəki"

        assert [e["id"] for e in await queue(client, region="Quba")] == [first["escalation_id"]]
        assert [e["id"] for e in await queue(client, language="ru")] == [second["escalation_id"]]
        assert await queue(client, reason="low_confidence") == []
        assert len(await queue(client, reason="user_requested")) == 2
        bad = await client.get(QUEUE, params={"language": "fr"})
        assert bad.status_code == 422


async def test_detail_shows_the_conversation_waiting_messages_passages_and_a_draft(
    client: httpx.AsyncClient,
) -> None:
    user = new_user()
    body = await escalate(client, user, profile={"region": "Quba", "crops": ["pomidor"]})
    later = await ask(client, "Yarpaqların altı da saralıb", user, body["thread_id"])
    assert later["route"] == "human"

    response = await client.get(f"{ESCALATIONS}/{body['escalation_id']}")
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["escalation"]["id"] == body["escalation_id"]
    assert found["escalation"]["followups"] == ["Yarpaqların altı da saralıb"]
    assert [(m["role"], m["content"]) for m in found["messages"]] == [
        ("user", ASK_HUMAN_AZ),
        ("user", "Yarpaqların altı da saralıb"),
    ]
    assert found["profile"] == {"region": "Quba", "crops": ["pomidor"]}
    assert found["passages"], "a hand-off on request is searched for the expert"
    assert all(p["title"] and isinstance(p["score"], float) for p in found["passages"])
    assert found["draft"], "ALİM's answer from those passages, to edit"
    assert text("offline", "az") not in found["draft"]
    assert any(p["title"] in found["draft"] for p in found["passages"]), "the draft cites"

    assert_error(
        await client.get(f"{ESCALATIONS}/esc_0123456789abcdef"), 404, "escalation_not_found"
    )


async def test_closing_without_an_answer_tells_the_farmer_politely_and_frees_the_thread(
    client: httpx.AsyncClient,
) -> None:
    user = new_user()
    body = await escalate(client, user, ASK_HUMAN_RU)
    escalation_id = body["escalation_id"]
    assert (
        await client.post(f"{ESCALATIONS}/{escalation_id}/claim", json={"agent_id": "a1"})
    ).status_code == 200
    refused = await client.post(
        f"{ESCALATIONS}/{escalation_id}/close", json={"agent_id": "a2", "reason": "spam"}
    )
    assert_error(refused, 409, "escalation_claimed")
    bad = await client.post(
        f"{ESCALATIONS}/{escalation_id}/close", json={"agent_id": "a1", "reason": "rude"}
    )
    assert bad.status_code == 422

    closed = await client.post(
        f"{ESCALATIONS}/{escalation_id}/close", json={"agent_id": "a1", "reason": "not_farming"}
    )
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["close_reason"] == "not_farming"
    assert closed.json()["agent_id"] == "a1"
    assert escalation_id not in [e["id"] for e in await queue(client)]

    messages = await history(client, body["thread_id"], user)
    assert messages[-1]["role"] == "assistant"
    assert messages[-1]["content"] == text("closed_not_farming", "ru")
    assert messages[-1]["from_human"] is False
    again = await client.post(
        f"{ESCALATIONS}/{escalation_id}/close", json={"agent_id": "a1", "reason": "spam"}
    )
    assert_error(again, 409, "escalation_resolved")

    # The thread takes a question for the bot again.
    next_turn = await ask(client, "Pomidoru nə vaxt suvarım?", user, body["thread_id"])
    assert next_turn["escalated"] is False and next_turn["route"] != "human"


async def test_the_expert_can_keep_the_conversation(client: httpx.AsyncClient) -> None:
    user = new_user()
    body = await escalate(client, user)
    answered = await client.post(
        f"{ESCALATIONS}/{body['escalation_id']}/reply",
        json={"answer": EXPERT, "agent_id": "a7", "next": "expert"},
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["status"] == "resolved"

    kept = [e for e in await queue(client) if e["thread_id"] == body["thread_id"]]
    assert len(kept) == 1 and kept[0]["reason"] == "kept_by_expert"
    assert kept[0]["claimed_by"] == "a7", "it stays with the expert who answered"

    followup = await ask(client, "Karbamidi nə qədər verim?", user, body["thread_id"])
    assert followup["route"] == "human", "no bot answer: the expert has the conversation"
    assert followup["response"] == text("waiting_ack", "az")
    second = await client.post(
        f"{ESCALATIONS}/{kept[0]['id']}/reply", json={"answer": "Hektara 100 kq.", "agent_id": "a7"}
    )
    assert second.status_code == 200, second.text
    shown = await history(client, body["thread_id"], user)
    assert [(m["role"], m["content"], bool(m.get("from_human"))) for m in shown[-3:]] == [
        ("assistant", EXPERT, True),
        ("user", "Karbamidi nə qədər verim?", False),
        ("assistant", "Hektara 100 kq.", True),
    ]
    # And then the bot again (the default).
    last = await ask(client, "Pomidoru nə vaxt suvarım?", user, body["thread_id"])
    assert last["escalated"] is False


async def read_events(
    client: httpx.AsyncClient, count: int, headers: dict[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The first `count` escalation events of the stream: (id, escalation)."""
    out: list[tuple[str, dict[str, Any]]] = []
    async with client.stream("GET", EVENTS, headers=headers or {}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id, data = "", ""
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
            elif line == "" and data:
                out.append((event_id, json.loads(data)))
                data = ""
                if len(out) >= count:
                    break
    return out


async def test_the_event_stream_shows_changes_live_and_resumes(api_settings: Settings) -> None:
    # A real server (uvicorn on 127.0.0.1): the stream is endless, read as it arrives.
    application = create_app(api_settings, GraphDeps(api_settings, _embeddings=HashingEmbeddings()))
    with serve_in_thread(application) as url:
        keys = application.state.keys
        name = f"inbox-{new_user()}"
        key, _ = await keys.create(name, ["chat", "agent"])
        rival_key, _ = await keys.create(f"rival-{new_user()}", ["agent"])
        headers = {"X-API-Key": key}
        async with (
            httpx.AsyncClient(base_url=url, headers=headers, timeout=30, trust_env=False) as client,
            httpx.AsyncClient(base_url=url, headers=headers, timeout=30, trust_env=False) as agent,
        ):
            reader = asyncio.create_task(read_events(agent, 1))
            await asyncio.sleep(0.5)
            started = datetime.now(UTC)
            body = await escalate(client, new_user())
            ((first_id, new),) = await asyncio.wait_for(reader, timeout=10)
            assert (datetime.now(UTC) - started).total_seconds() < 5
            assert new["id"] == body["escalation_id"] and new["status"] == "open"
            assert new["claimed_by"] is None and new["question"] == ASK_HUMAN_AZ

            # Resuming after an event brings what changed since, as its state now.
            claimed = await client.post(
                f"{ESCALATIONS}/{body['escalation_id']}/claim", json={"agent_id": "a1"}
            )
            assert claimed.status_code == 200
            after_first = {"Last-Event-ID": first_id}
            ((claim_id, taken),) = await asyncio.wait_for(
                read_events(agent, 1, after_first), timeout=10
            )
            assert taken["id"] == body["escalation_id"] and taken["claimed_by"] == "a1"
            assert claim_id != first_id
            released = await client.post(
                f"{ESCALATIONS}/{body['escalation_id']}/release", json={"agent_id": "a1"}
            )
            assert released.status_code == 200
            ((_, back),) = await asyncio.wait_for(
                read_events(agent, 1, {"Last-Event-ID": claim_id}), timeout=10
            )
            assert back["claimed_by"] is None
            seen = [(first_id, new)]

            bad = await agent.get(EVENTS, headers={"Last-Event-ID": "nonsense"})
            assert_error(bad, 422, "invalid_last_event_id")

            # Another partner's agent sees none of it.
            rival = {"X-API-Key": rival_key, "Last-Event-ID": seen[0][0]}
            other = asyncio.create_task(read_events(agent, 1, rival))
            await asyncio.sleep(2.5)
            assert not other.done(), "no event of another partner"
            other.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await other


async def test_handoff_analytics_per_partner_and_agent(app: FastAPI) -> None:
    name, key = await partner_client(app, ["chat", "agent"])
    async with api_client(app, key) as client:
        ids = [(await escalate(client, new_user()))["escalation_id"] for _ in range(3)]
        for escalation_id, agent in zip(ids, ["a1", "a1", "a2"], strict=True):
            claimed = await client.post(
                f"{ESCALATIONS}/{escalation_id}/claim", json={"agent_id": agent}
            )
            assert claimed.status_code == 200
        for escalation_id, agent in zip(ids[:2], ["a1", "a1"], strict=True):
            reply = await client.post(
                f"{ESCALATIONS}/{escalation_id}/reply", json={"answer": EXPERT, "agent_id": agent}
            )
            assert reply.status_code == 200
        today = datetime.now(UTC).date().isoformat()
        response = await client.get(
            "/api/v1/analytics/handoff", params={"start_date": today, "end_date": today}
        )
        assert response.status_code == 200, response.text
        report = response.json()

    rows = await app.state.engine.escalations.timings(name, today, "9999")
    assert len(rows) == 3
    partner = report["partner"]
    assert (partner["escalations"], partner["open"], partner["answered"]) == (3, 1, 2)
    claims = [
        (
            datetime.fromisoformat(r["first_claimed_at"]) - datetime.fromisoformat(r["created_at"])
        ).total_seconds()
        for r in rows
    ]
    assert partner["time_to_claim"]["count"] == 3
    assert partner["time_to_claim"]["p50"] == pytest.approx(percentile(claims, 0.5), abs=1e-3)
    assert partner["time_to_claim"]["p90"] == pytest.approx(percentile(claims, 0.9), abs=1e-3)
    assert partner["time_to_answer"]["count"] == 2
    assert partner["time_to_answer"]["p90"] >= partner["time_to_claim"]["p50"] > 0
    assert set(report["agents"]) == {"a1", "a2"}
    assert report["agents"]["a1"]["time_to_claim"]["count"] == 2
    assert report["agents"]["a1"]["time_to_answer"]["count"] == 2
    assert report["agents"]["a2"]["time_to_answer"]["count"] == 0
    assert report["agents"]["a2"]["time_to_answer"]["p50"] is None


def test_a_kept_conversation_has_no_time_to_claim() -> None:
    created = "2026-01-01T10:00:00.000+00:00"
    rows = [
        {
            "created_at": created,
            "first_claimed_at": "2026-01-01T10:01:00.000+00:00",
            "first_claimed_by": "a1",
            "resolved_at": "2026-01-01T10:03:00.000+00:00",
            "agent_id": "a1",
            "status": "resolved",
            "reason": reason,
        }
        for reason in ("user_requested", "kept_by_expert")
    ]
    report = summarize(rows)
    assert report["partner"]["time_to_claim"] == {"count": 1, "p50": 60.0, "p90": 60.0}
    assert report["partner"]["time_to_answer"] == {"count": 2, "p50": 180.0, "p90": 180.0}
    assert report["agents"]["a1"]["time_to_claim"]["count"] == 1


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([4.0], 0.9) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([10.0, 0.0, 5.0, 20.0, 15.0, 30.0, 25.0, 35.0, 40.0, 45.0, 50.0], 0.9) == 45.0


async def test_an_agent_key_reads_only_its_partner_s_escalations(app: FastAPI) -> None:
    _, farmer_key = await partner_client(app, ["chat"])
    name, agent_key = await partner_client(app, ["agent"])
    own_chat, _ = await app.state.keys.create(name, ["chat"])
    async with api_client(app, own_chat) as farmer_app:
        mine = await escalate(farmer_app, new_user("f"))
    async with api_client(app, farmer_key) as other_app:
        theirs = await escalate(other_app, new_user("f"))

    async with api_client(app, agent_key) as agent:
        session = await agent.get("/api/v1/inbox/session")
        assert session.json()["partner"] == name and session.json()["scopes"] == ["agent"]
        assert [e["id"] for e in await queue(agent)] == [mine["escalation_id"]]
        assert (await agent.get(f"{ESCALATIONS}/{mine['escalation_id']}")).status_code == 200
        for path in (
            f"{ESCALATIONS}/{theirs['escalation_id']}",
            f"{ESCALATIONS}/{theirs['escalation_id']}/claim",
            f"{ESCALATIONS}/{theirs['escalation_id']}/close",
        ):
            method = agent.get if path.endswith(theirs["escalation_id"]) else agent.post
            kwargs: dict[str, Any] = (
                {}
                if method == agent.get
                else {
                    "json": {"agent_id": "a", "reason": "spam"}
                    if path.endswith("close")
                    else {"agent_id": "a"}
                }
            )
            assert_error(await method(path, **kwargs), 404, "escalation_not_found")
        # No chat, no threads, no admin, no webhooks.
        chat = await agent.post(INVOKE, json={"message": "Salam", "user_id": "x"})
        assert_error(chat, 403, "insufficient_scope")
        stream = await agent.post(STREAM, json={"message": "Salam", "user_id": "x"})
        assert_error(stream, 403, "insufficient_scope")
        threads = await agent.get(THREADS, params={"user_id": mine["thread_id"]})
        assert_error(threads, 403, "insufficient_scope")
        assert_error(await agent.get("/api/v1/webhooks"), 403, "insufficient_scope")
        assert_error(await agent.get("/api/v1/assistant"), 403, "insufficient_scope")
        assert_error(
            await agent.get(
                "/api/v1/analytics/handoff",
                params={"start_date": "2026-01-01", "end_date": "2026-01-02"},
            ),
            403,
            "insufficient_scope",
        )

    async with api_client(app, farmer_key) as chat_only:
        assert_error(await chat_only.get(QUEUE), 403, "insufficient_scope")
        assert_error(await chat_only.get(EVENTS), 403, "insufficient_scope")
        assert_error(await chat_only.get("/api/v1/inbox/session"), 403, "insufficient_scope")
