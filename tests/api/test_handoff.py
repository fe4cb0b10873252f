"""Hand-off to a human agronomist, as a partner sees it: a turn escalates (on request or on low
confidence), the thread waits for the expert (new messages 409 `awaiting_human`), an agent key
lists and answers the escalation, the answer becomes the thread's assistant message, and the
conversation goes on normally. Also the same loop through the `alim` CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import aconnect_sse
from langgraph.types import Command

from alim.i18n import text
from alim.settings import Settings
from alim.threads import Owner, thread_key
from graphs.nodes.escalate import handoff_message
from tests.api.helpers import (
    INVOKE,
    STREAM,
    THREADS,
    api_client,
    ask,
    assert_error,
    cli,
    history,
    new_user,
    running_app,
    thread_list,
)
from tests.support.alim_serve import server_env

ESCALATIONS = "/api/v1/escalations"
ASK_HUMAN = "Mənə aqronomla danışmaq lazımdır"
DROUGHT = "Fermada susuzluq var, nə edim?"
FROST = "How do I protect wheat from frost?"
EXPERT = "Damcı suvarmanı gecə aparın və torpağı malçlayın."
ESCALATION_KEYS = {
    "id",
    "followups",
    "thread_id",
    "user_id",
    "question",
    "reason",
    "confidence",
    "sources",
    "status",
    "created_at",
    "resolved_at",
    "answer",
    "agent_id",
    "claimed_by",
    "claimed_at",
    "updated_at",
    "language",
    "route",
    "region",
    "crops",
    "close_reason",
}


async def escalations(client: httpx.AsyncClient, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    response = await client.get(ESCALATIONS, params=params)
    assert response.status_code == 200, response.text
    return response.json()["escalations"]  # type: ignore[no-any-return]


def by_id(items: list[dict[str, Any]], escalation_id: str) -> dict[str, Any] | None:
    return next((e for e in items if e["id"] == escalation_id), None)


async def escalate(client: httpx.AsyncClient, user: str, thread_id: str) -> dict[str, Any]:
    body = await ask(client, ASK_HUMAN, user, thread_id)
    assert body["escalated"] is True, body
    assert body["escalation_reason"] == "user_requested"
    assert body["escalation_id"], body
    return body


async def reply(
    client: httpx.AsyncClient, escalation_id: str, answer: str = EXPERT, agent: str = "agro_17"
) -> httpx.Response:
    return await client.post(
        f"{ESCALATIONS}/{escalation_id}/reply", json={"answer": answer, "agent_id": agent}
    )


async def collect_stream(client: httpx.AsyncClient, body: dict[str, Any]) -> list[tuple[str, str]]:
    async with aconnect_sse(client, "POST", STREAM, json=body) as source:
        assert source.response.status_code == 200
        return [(sse.event, sse.data) async for sse in source.aiter_sse()]


# --------------------------------------------------------------------------- escalation


async def test_requested_human_escalates_and_is_listed_for_agents(
    client: httpx.AsyncClient,
) -> None:
    user = new_user()
    body = await escalate(client, user, "farm-1")

    assert body["thread_id"] == "farm-1"
    assert body["response"] == handoff_message("user_requested", "az")
    assert body["route"] == "human"
    assert body["escalation_id"].startswith("esc_")

    listed = by_id(await escalations(client, "open"), body["escalation_id"])
    assert listed is not None, "the open escalation is listed for the agent"
    assert set(listed) == ESCALATION_KEYS
    assert listed["thread_id"] == "farm-1"
    assert listed["user_id"] == user
    assert listed["question"] == ASK_HUMAN
    assert listed["reason"] == "user_requested"
    assert listed["status"] == "open"
    assert listed["confidence"] is None or 0 <= listed["confidence"] <= 1
    assert isinstance(listed["sources"], list)
    assert listed["created_at"]
    assert listed["answer"] is None and listed["agent_id"] is None
    assert listed["claimed_by"] is None and listed["claimed_at"] is None
    assert by_id(await escalations(client, "resolved"), body["escalation_id"]) is None
    assert by_id(await escalations(client), body["escalation_id"]) is not None

    threads = await thread_list(client, user)
    assert [(t["thread_id"], t["status"]) for t in threads] == [("farm-1", "awaiting_human")]


async def test_escalation_endpoints_need_the_agent_scope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    body = await escalate(client, new_user(), "scoped")
    chat_key, _ = await app.state.keys.create("acme", ["chat"])

    async with api_client(app, chat_key) as chat_only:
        assert_error(await chat_only.get(ESCALATIONS), 403, "insufficient_scope")
        assert_error(await reply(chat_only, body["escalation_id"]), 403, "insufficient_scope")
    # The refused reply changed nothing.
    assert by_id(await escalations(client, "open"), body["escalation_id"]) is not None


async def test_another_partners_agent_neither_sees_nor_answers_it(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    user = new_user()
    body = await escalate(client, user, "private")
    other_key, _ = await app.state.keys.create(f"rival-{new_user()}", ["chat", "agent"])

    async with api_client(app, other_key) as rival:
        assert by_id(await escalations(rival), body["escalation_id"]) is None
        assert_error(await reply(rival, body["escalation_id"]), 404, "escalation_not_found")

    listed = by_id(await escalations(client, "open"), body["escalation_id"])
    assert listed is not None and listed["status"] == "open"
    assert [m["role"] for m in await history(client, "private", user)] == ["user"]


async def test_streamed_turn_escalates_too(client: httpx.AsyncClient) -> None:
    user = new_user()
    events = await collect_stream(
        client, {"message": ASK_HUMAN, "user_id": user, "thread_id": "streamed"}
    )

    names = [name for name, _ in events]
    assert names[0] == "metadata" and names[-1] == "done" and "error" not in names
    assert "escalate" in [data for name, data in events if name == "node"]
    text = "".join(data for name, data in events if name == "token")
    assert text == handoff_message("user_requested", "az")
    (sources,) = [json.loads(data) for name, data in events if name == "sources"]
    assert sources["escalated"] is True
    assert sources["escalation_reason"] == "user_requested"
    listed = by_id(await escalations(client, "open"), sources["escalation_id"])
    assert listed is not None and listed["thread_id"] == "streamed"
    assert (await thread_list(client, user))[0]["status"] == "awaiting_human"


async def test_deleting_an_awaiting_thread_closes_its_escalation(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from alim.threads import Owner, thread_key

    user = new_user()
    body = await escalate(client, user, "deleted")
    deleted = await client.delete(f"{THREADS}/deleted", params={"user_id": user})
    assert deleted.status_code == 204

    assert by_id(await escalations(client, "open"), body["escalation_id"]) is None
    # The reply is refused with what happened, not "already resolved".
    assert_error(await reply(client, body["escalation_id"]), 409, "escalation_cancelled")
    saver = app.state.engine.persistence.checkpointer
    key = thread_key(Owner("dev", user), "deleted")
    assert [c async for c in saver.alist({"configurable": {"thread_id": key}})] == []


async def test_unknown_escalation_is_404(client: httpx.AsyncClient) -> None:
    assert_error(await reply(client, "esc_0123456789abcdef"), 404, "escalation_not_found")


# --------------------------------------------------------------------------- awaiting human


async def test_new_messages_wait_for_the_expert(client: httpx.AsyncClient) -> None:
    """While the thread waits for an agronomist, the farmer's next messages are taken (200, a
    normal stream), stored in the thread, acknowledged in their language without a bot answer,
    and shown to the agronomist with the escalation; the expert's reply then answers them all."""
    user = new_user()
    asked = await escalate(client, user, "waiting")
    more = "Yarpaqların altı da saralır, şəkil göndərə bilərəm."
    invoked = await client.post(
        INVOKE, json={"message": more, "user_id": user, "thread_id": "waiting"}
    )
    assert invoked.status_code == 200, invoked.text
    body = invoked.json()
    assert body["response"] == text("waiting_ack", "az")
    assert (body["escalated"], body["route"], body["sources"]) == (True, "human", [])
    assert body["escalation_id"] == asked["escalation_id"]  # the same hand-off goes on
    events = await collect_stream(
        client, {"message": "And at night?", "user_id": user, "thread_id": "waiting"}
    )
    assert events[0][0] == "metadata" and events[-1][0] == "done"
    assert "".join(data for name, data in events if name == "token") == text("waiting_ack", "en")
    # Too short to tell without Azerbaijani letters ("how many times?"): the thread's language.
    short = await client.post(
        INVOKE, json={"message": "neche defe?", "user_id": user, "thread_id": "waiting"}
    )
    assert short.json()["response"] == text("waiting_ack", "az")

    messages = await history(client, "waiting", user)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", ASK_HUMAN),
        ("user", more),
        ("user", "And at night?"),
        ("user", "neche defe?"),
    ]
    (summary,) = await thread_list(client, user)
    assert (summary["status"], summary["message_count"]) == ("awaiting_human", 4)
    listed = by_id(await escalations(client, "open"), asked["escalation_id"])
    assert listed is not None and listed["followups"] == [more, "And at night?", "neche defe?"]

    answered = await reply(client, asked["escalation_id"])
    assert answered.status_code == 200, answered.text
    assert [m["role"] for m in await history(client, "waiting", user)] == [
        "user",
        "user",
        "user",
        "user",
        "assistant",
    ]
    # Other threads of the same user are not held up.
    other = await ask(client, DROUGHT, user, "elsewhere")
    assert other["escalated"] is False


async def test_expert_reply_resolves_and_the_conversation_goes_on(
    client: httpx.AsyncClient,
) -> None:
    user = new_user()
    body = await escalate(client, user, "resolve-me")
    escalation_id = body["escalation_id"]

    answered = await reply(client, escalation_id)
    assert answered.status_code == 200, answered.text
    resolved = answered.json()
    assert resolved["id"] == escalation_id
    assert resolved["status"] == "resolved"
    assert resolved["answer"] == EXPERT
    assert resolved["agent_id"] == "agro_17"
    assert resolved["resolved_at"]

    thread = await client.get(f"{THREADS}/resolve-me", params={"user_id": user})
    assert thread.status_code == 200, thread.text
    assert thread.json()["status"] == "active"
    messages = thread.json()["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", ASK_HUMAN),
        ("assistant", EXPERT),
    ]
    assert messages[0]["from_human"] is False
    assert messages[1]["from_human"] is True

    listed = by_id(await escalations(client, "resolved"), escalation_id)
    assert listed is not None
    assert (listed["status"], listed["answer"], listed["agent_id"]) == (
        "resolved",
        EXPERT,
        "agro_17",
    )
    assert by_id(await escalations(client, "open"), escalation_id) is None

    assert_error(await reply(client, escalation_id, "another answer"), 409, "escalation_resolved")
    assert [m["content"] for m in await history(client, "resolve-me", user)] == [ASK_HUMAN, EXPERT]

    # The next message is an ordinary turn, streamed and invoked.
    events = await collect_stream(
        client, {"message": DROUGHT, "user_id": user, "thread_id": "resolve-me"}
    )
    names = [name for name, _ in events]
    assert names[0] == "metadata" and names[-1] == "done"
    assert "token" in names and "error" not in names
    (sources,) = [json.loads(data) for name, data in events if name == "sources"]
    assert sources["escalated"] is False
    assert sources["route"] == "agronomy"
    streamed_text = "".join(data for name, data in events if name == "token")

    nxt = await ask(client, FROST, user, "resolve-me")
    assert nxt["escalated"] is False and nxt["escalation_id"] is None
    assert nxt["response"].strip()

    messages = await history(client, "resolve-me", user)
    assert [(m["role"], m["from_human"]) for m in messages] == [
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", False),
        ("user", False),
        ("assistant", False),
    ]
    assert messages[3]["content"] == streamed_text
    assert messages[5]["content"] == nxt["response"]


async def test_a_reply_whose_bookkeeping_failed_is_completed_by_its_retry(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """The graph took the expert's answer, then the process failed before the books: the
    escalation is still open and the thread waiting. The retried reply finishes the books with
    the answer the farmer already has, and resumes nothing twice."""
    user = new_user()
    body = await escalate(client, user, "half-replied")
    key = thread_key(Owner("dev", user), "half-replied")
    config = {"configurable": {"thread_id": key}}
    await app.state.engine.graph.ainvoke(
        Command(resume={"answer": EXPERT, "agent_id": "agro_17"}), config
    )
    assert by_id(await escalations(client, "open"), body["escalation_id"]) is not None

    retried = await reply(client, body["escalation_id"], "a reworded answer", "agro_18")
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["answer"]) == ("resolved", EXPERT)
    thread = (await client.get(f"{THREADS}/half-replied", params={"user_id": user})).json()
    assert thread["status"] == "active"
    assert [m["content"] for m in thread["messages"]] == [ASK_HUMAN, EXPERT]
    # The thread takes new questions again.
    assert (await ask(client, FROST, user, "half-replied"))["escalated"] is False


async def claim(client: httpx.AsyncClient, escalation_id: str, agent: str) -> httpx.Response:
    return await client.post(f"{ESCALATIONS}/{escalation_id}/claim", json={"agent_id": agent})


async def release(client: httpx.AsyncClient, escalation_id: str, agent: str) -> httpx.Response:
    return await client.post(f"{ESCALATIONS}/{escalation_id}/release", json={"agent_id": agent})


async def test_a_claimed_escalation_is_one_agent_s_until_released(
    client: httpx.AsyncClient,
) -> None:
    escalation_id = (await escalate(client, new_user(), "claim-me"))["escalation_id"]
    taken = await claim(client, escalation_id, "agro_1")
    assert taken.status_code == 200, taken.text
    assert taken.json()["claimed_by"] == "agro_1" and taken.json()["claimed_at"]
    listed = by_id(await escalations(client, "open"), escalation_id)
    assert listed is not None and listed["claimed_by"] == "agro_1"  # the queue shows it taken

    # Another agent can neither claim, release nor answer it; its claimer renews it.
    assert_error(await claim(client, escalation_id, "agro_2"), 409, "escalation_claimed")
    assert_error(await release(client, escalation_id, "agro_2"), 409, "escalation_claimed")
    assert_error(await reply(client, escalation_id, agent="agro_2"), 409, "escalation_claimed")
    assert (await claim(client, escalation_id, "agro_1")).status_code == 200

    released = await release(client, escalation_id, "agro_1")
    assert released.status_code == 200, released.text
    assert released.json()["claimed_by"] is None
    assert (await claim(client, escalation_id, "agro_2")).json()["claimed_by"] == "agro_2"
    answered = await reply(client, escalation_id, agent="agro_2")
    assert answered.status_code == 200, answered.text
    assert answered.json()["claimed_by"] is None  # resolved: no one works on it any more
    assert_error(await claim(client, escalation_id, "agro_1"), 409, "escalation_resolved")
    assert_error(await claim(client, "esc_0123456789abcdef", "agro_1"), 404, "escalation_not_found")


async def test_a_claim_left_idle_returns_to_the_queue(
    api_settings_factory: Callable[..., Settings],
) -> None:
    async with (
        running_app(api_settings_factory(claim_timeout=0.3)) as application,
        api_client(application) as client,
    ):
        escalation_id = (await escalate(client, new_user(), "idle-claim"))["escalation_id"]
        assert (await claim(client, escalation_id, "agro_1")).status_code == 200
        assert_error(await claim(client, escalation_id, "agro_2"), 409, "escalation_claimed")
        await asyncio.sleep(0.5)
        listed = by_id(await escalations(client, "open"), escalation_id)
        assert listed is not None and listed["claimed_by"] is None
        assert (await claim(client, escalation_id, "agro_2")).json()["claimed_by"] == "agro_2"


async def test_two_agents_claiming_at_once_get_one_claim(client: httpx.AsyncClient) -> None:
    escalation_id = (await escalate(client, new_user(), "race-claim"))["escalation_id"]
    results = await asyncio.gather(*(claim(client, escalation_id, f"agro_{i}") for i in range(6)))
    assert sorted(r.status_code for r in results) == [200] + [409] * 5


async def test_reply_validation(client: httpx.AsyncClient) -> None:
    body = await escalate(client, new_user(), "validate")
    url = f"{ESCALATIONS}/{body['escalation_id']}/reply"

    assert_error(
        await client.post(url, json={"answer": "", "agent_id": "a"}), 422, "validation_error"
    )
    assert_error(await client.post(url, json={"answer": "ok"}), 422, "validation_error")
    assert_error(
        await client.post(url, json={"answer": "   ", "agent_id": "a"}), 422, "answer_empty"
    )
    assert_error(
        await client.post(url, json={"answer": "ok", "agent_id": "a", "extra": 1}),
        422,
        "validation_error",
    )
    assert_error(
        await client.post(f"{ESCALATIONS}/not-an-id/reply", json={"answer": "x", "agent_id": "a"}),
        422,
        "validation_error",
    )
    assert by_id(await escalations(client, "open"), body["escalation_id"]) is not None


async def test_low_confidence_escalates(client: httpx.AsyncClient) -> None:
    user = new_user()
    body = await ask(client, DROUGHT, user, "unsure", search_options={"score_threshold": 0.9999})

    assert body["escalated"] is True
    assert body["escalation_reason"] == "low_confidence"
    assert body["route"] == "agronomy"
    assert body["sources"] == []
    assert body["response"] == handoff_message("low_confidence", "az")
    assert body["confidence"] is not None and body["confidence"] < 0.27

    listed = by_id(await escalations(client, "open"), body["escalation_id"])
    assert listed is not None
    assert listed["reason"] == "low_confidence"
    assert listed["question"] == DROUGHT
    assert listed["confidence"] == pytest.approx(body["confidence"])
    assert listed["sources"] == []


# --------------------------------------------------------------------------- CLI


@pytest.mark.slow
def test_cli_escalation_list_and_reply(tmp_path: Path) -> None:
    env = server_env(tmp_path)
    env.pop("VIRTUAL_ENV", None)

    ran = cli(env, "run", ASK_HUMAN, "--user", "u", "--thread", "t")
    assert handoff_message("user_requested", "az") in ran.stdout
    assert "escalated (user_requested)" in ran.stderr

    listed = cli(env, "escalations", "list").stdout.strip().splitlines()
    assert len(listed) == 1, listed
    escalation_id, status, thread_id, reason, question = listed[0].split("\t")
    assert escalation_id.startswith("esc_")
    assert (status, thread_id, reason, question) == ("open", "t", "user_requested", ASK_HUMAN)

    # A message while waiting is kept for the expert and acknowledged, not answered by the bot.
    waiting = cli(env, "run", DROUGHT, "--user", "u", "--thread", "t")
    assert text("waiting_ack", "az") in waiting.stdout

    replied = cli(env, "escalations", "reply", escalation_id, EXPERT, "--agent", "agro_cli")
    assert f"resolved {escalation_id}" in replied.stderr

    assert cli(env, "escalations", "list").stdout.strip() == ""
    (resolved,) = cli(env, "escalations", "list", "--status", "resolved").stdout.splitlines()
    assert resolved.split("\t")[:2] == [escalation_id, "resolved"]

    shown = cli(env, "threads", "show", "t", "--user", "u").stdout
    assert f"[user] {ASK_HUMAN}" in shown
    assert f"[assistant] {EXPERT}" in shown

    again = cli(env, "run", DROUGHT, "--user", "u", "--thread", "t")
    assert again.stdout.strip()
    assert "escalated" not in again.stderr
