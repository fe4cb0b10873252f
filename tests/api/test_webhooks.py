"""Signed webhooks, received by a real HTTP endpoint (uvicorn on 127.0.0.1) that verifies every
`X-Webhook-Signature` with the secret `POST /api/v1/webhooks` returned, as a partner would.

Retries are driven by the test: it moves a pending delivery's `next_attempt_at` into the past and
runs `Dispatcher.deliver_due()` itself, instead of waiting for the real backoff. The app's own
background dispatcher runs too; a delivery is claimed by one of them at a time."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alim.db import Database
from alim.netguard import networks
from alim.webhooks import EVENTS, LEASE_SECONDS, Dispatcher, verify
from tests.api.helpers import THREADS, api_client, ask, assert_error, new_user, running_app
from tests.conftest import make_settings
from tests.support.servers import free_port, serve_in_thread

LOOPBACK = networks(["127.0.0.0/8"])

WEBHOOKS = "/api/v1/webhooks"
ESCALATIONS = "/api/v1/escalations"
DROUGHT = "Fermada susuzluq var, nə edim?"
FROST = "How do I protect wheat from frost?"
ASK_HUMAN = "Mənə aqronomla danışmaq lazımdır"
EXPERT = "Səhər tezdən suvarın."
PAYLOAD_KEYS = {"id", "event", "timestamp", "created_at", "data"}


@dataclass
class Attempt:
    headers: dict[str, str]
    body: bytes
    verified: bool
    status: int

    @property
    def id(self) -> str:
        return self.headers.get("x-webhook-id", "")


@dataclass
class Receiver:
    """A partner's webhook endpoint: verifies signatures, refuses the first `fail_first`
    attempts of each event (HTTP 500), and processes each `X-Webhook-Id` once."""

    secret: str | None = None
    fail_first: int = 0
    lose_ack: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    processed: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = {k.lower(): v for k, v in request.headers.items()}
            signature = headers.get("x-webhook-signature", "")
            verified = self.secret is not None and verify(self.secret, body, signature)
            with self._lock:
                delivery = headers.get("x-webhook-id", "")
                earlier = sum(1 for a in self.attempts if a.id == delivery)
                if not verified:
                    status = 401
                elif earlier < self.fail_first:
                    status = 500
                else:
                    if delivery in self.processed:
                        self.duplicates += 1
                    else:
                        self.processed[delivery] = json.loads(body)
                    # `lose_ack`: processed, but the answer is an error (a crash after the work).
                    status = 500 if earlier < self.fail_first + self.lose_ack else 204
                self.attempts.append(Attempt(headers, body, verified, status))
            if status == 204:
                return Response(status_code=204)
            return JSONResponse({"status": status}, status_code=status)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.processed.values())


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with serve_in_thread(rec.app()) as url:
        yield rec, f"{url}/hook"


@pytest.fixture
async def partner(app: FastAPI) -> tuple[str, str]:
    """A fresh partner (chat + agent), so no other test's webhooks or events are in the way."""
    name = f"hooks-{new_user()}"
    key, _ = await app.state.keys.create(name, ["chat", "agent"])
    return name, key


async def register(client: httpx.AsyncClient, url: str, events: list[str]) -> dict[str, Any]:
    response = await client.post(WEBHOOKS, json={"url": url, "events": events})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["secret"], "the signing secret comes back once, at creation"
    return created  # type: ignore[no-any-return]


async def deliveries(client: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{WEBHOOKS}/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def attempt_each_once(
    client: httpx.AsyncClient, dispatcher: Dispatcher, webhook_id: str
) -> list[dict[str, Any]]:
    """Run `dispatcher` until every delivery of the endpoint was attempted at least once (the
    endpoint failing); returns the delivery log then. Closes the dispatcher."""
    try:
        for _ in range(100):
            logged = await deliveries(client, webhook_id)
            if logged and all(d["attempts"] >= 1 for d in logged):
                break
            await dispatcher.deliver_due()
            await asyncio.sleep(0.02)
    finally:
        await dispatcher.aclose()
    return await deliveries(client, webhook_id)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


async def drive(db: Database, webhook_ids: list[str], done: Callable[[], bool]) -> None:
    """Deliver what is pending for these endpoints now, retrying without the real backoff, until
    `done()`. Deliveries claimed by a dispatcher right now (lease) are left alone."""
    dispatcher = Dispatcher(db, timeout=5, allowed=LOOPBACK)
    try:
        for _ in range(300):
            if done():
                return
            now = datetime.now(UTC)
            for webhook_id in webhook_ids:
                await db.run(
                    "UPDATE alim_outbox SET next_attempt_at = ? WHERE webhook_id = ? "
                    "AND status = 'pending' AND next_attempt_at < ?",
                    (
                        _iso(now - timedelta(seconds=1)),
                        webhook_id,
                        _iso(now + timedelta(seconds=LEASE_SECONDS / 2)),
                    ),
                )
            await dispatcher.deliver_due()
            await asyncio.sleep(0.02)
        assert done(), "the deliveries did not complete"
    finally:
        await dispatcher.aclose()


def parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value)
    assert ts.tzinfo is not None, value
    return ts


# --------------------------------------------------------------------------- events


async def test_events_arrive_signed_and_shaped_like_the_seed(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    _, key = partner
    user = new_user()
    async with api_client(app, key) as client:
        hook = await register(client, url, list(EVENTS))
        rec.secret = hook["secret"]
        assert sorted(hook["events"]) == sorted(EVENTS)
        escalated_only = Receiver()
        with serve_in_thread(escalated_only.app()) as other:
            narrow = await register(client, f"{other}/hook", ["conversation.escalated"])
            escalated_only.secret = narrow["secret"]

            first = await ask(client, DROUGHT, user)
            thread_id = first["thread_id"]
            second = await ask(client, ASK_HUMAN, user, thread_id)
            escalation_id = second["escalation_id"]
            claimed = await client.post(
                f"{ESCALATIONS}/{escalation_id}/claim", json={"agent_id": "agro_9"}
            )
            assert claimed.status_code == 200, claimed.text
            renewed = await client.post(  # a renewal is no new event
                f"{ESCALATIONS}/{escalation_id}/claim", json={"agent_id": "agro_9"}
            )
            assert renewed.status_code == 200, renewed.text
            answered = await client.post(
                f"{ESCALATIONS}/{escalation_id}/reply",
                json={"answer": EXPERT, "agent_id": "agro_9"},
            )
            assert answered.status_code == 200, answered.text
            rated = await client.post(
                f"{THREADS}/{thread_id}/feedback",
                json={"user_id": user, "run_id": first["run_id"], "score": 5, "comment": "Əla"},
            )
            assert rated.status_code == 201, rated.text

            db = app.state.engine.persistence.db
            await drive(
                db,
                [hook["id"], narrow["id"]],
                lambda: len(rec.processed) >= 7 and len(escalated_only.processed) >= 1,
            )
            log = await deliveries(client, hook["id"])
            narrow_log = await deliveries(client, narrow["id"])

    events = rec.events()
    assert sorted(e["event"] for e in events) == sorted(
        [
            "conversation.created",
            "message.received",
            "message.received",
            "conversation.escalated",
            "conversation.claimed",
            "conversation.resolved",
            "feedback.submitted",
        ]
    )
    assert all(a.verified for a in rec.attempts), "every delivery is signed with the secret"
    assert all(a.status == 204 for a in rec.attempts), [a.status for a in rec.attempts]
    for attempt in rec.attempts:
        payload = json.loads(attempt.body)
        assert set(payload) == PAYLOAD_KEYS
        assert attempt.headers["x-webhook-signature"].startswith("sha256=")
        assert attempt.headers["x-webhook-id"] == payload["id"]
        assert attempt.headers["x-webhook-timestamp"] == payload["timestamp"]
        assert attempt.headers["x-webhook-event"] == payload["event"]
        assert attempt.headers["content-type"].startswith("application/json")
        parse_ts(payload["timestamp"])
        assert payload["data"]["conversation_id"] == thread_id
        assert payload["data"]["user_id"] == user
        # A tampered body or another secret does not verify.
        assert not verify(
            hook["secret"], attempt.body + b" ", attempt.headers["x-webhook-signature"]
        )
        assert not verify(narrow["secret"], attempt.body, attempt.headers["x-webhook-signature"])
    assert len({e["id"] for e in events}) == 7, "each event has its own id"

    def one(name: str) -> dict[str, Any]:
        (data,) = [e["data"] for e in events if e["event"] == name]
        return data

    assert one("conversation.escalated")["reason"] == "user_requested"
    assert one("conversation.escalated")["escalation_id"] == escalation_id
    assert one("conversation.claimed")["escalation_id"] == escalation_id
    assert one("conversation.claimed")["assigned_agent"] == "agro_9"
    assert one("conversation.resolved")["escalation_id"] == escalation_id
    assert one("conversation.resolved")["assigned_agent"] == "agro_9"
    feedback = one("feedback.submitted")
    assert (feedback["run_id"], feedback["score"]) == (first["run_id"], 5)
    assert feedback["feedback_id"]
    assert "comment" not in feedback  # ids only: the comment's text stays out of the outbox
    received = [e["data"] for e in events if e["event"] == "message.received"]
    assert sorted(d["run_id"] for d in received) == sorted([first["run_id"], second["run_id"]])
    assert sorted(d["route"] for d in received) == ["agronomy", "human"]

    # The endpoint subscribed to escalations only got that one event.
    (only,) = escalated_only.events()
    assert only["event"] == "conversation.escalated"
    assert only["data"]["escalation_id"] == escalation_id
    assert all(a.verified for a in escalated_only.attempts)

    assert len(log) == 7
    assert {(d["status"], d["attempts"]) for d in log} == {("delivered", 1)}
    assert {d["id"] for d in log} == {e["id"] for e in events}
    assert all(d["delivered_at"] and 200 <= d["last_status"] < 300 for d in log)
    assert [d["event"] for d in narrow_log] == ["conversation.escalated"]


async def test_a_closed_escalation_sends_conversation_closed_with_ids_only(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    _, key = partner
    user = new_user()
    async with api_client(app, key) as client:
        hook = await register(client, url, ["conversation.closed"])
        rec.secret = hook["secret"]
        escalated = await ask(client, ASK_HUMAN, user)
        closed = await client.post(
            f"{ESCALATIONS}/{escalated['escalation_id']}/close",
            json={"agent_id": "agro_4", "reason": "spam"},
        )
        assert closed.status_code == 200, closed.text
        await drive(app.state.engine.persistence.db, [hook["id"]], lambda: len(rec.processed) >= 1)

    (event,) = rec.events()
    assert event["event"] == "conversation.closed"
    assert event["data"] == {
        "conversation_id": escalated["thread_id"],
        "user_id": user,
        "escalation_id": escalated["escalation_id"],
        "assigned_agent": "agro_4",
        "reason": "spam",
    }
    assert all(a.verified for a in rec.attempts)


async def test_created_is_sent_for_the_first_turn_of_a_thread_only(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    _, key = partner
    user = new_user()
    async with api_client(app, key) as client:
        hook = await register(client, url, ["conversation.created", "message.received"])
        rec.secret = hook["secret"]
        await ask(client, DROUGHT, user, "one")
        await ask(client, FROST, user, "one")
        await ask(client, FROST, user, "two")
        await drive(app.state.engine.persistence.db, [hook["id"]], lambda: len(rec.processed) >= 5)

    events = rec.events()
    created = sorted(
        e["data"]["conversation_id"] for e in events if e["event"] == "conversation.created"
    )
    assert created == ["one", "two"]
    assert sum(e["event"] == "message.received" for e in events) == 3


# --------------------------------------------------------------------------- retries


async def test_failing_receiver_gets_retries_with_the_same_id(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.fail_first = 2
    _, key = partner
    async with api_client(app, key) as client:
        hook = await register(client, url, ["conversation.created"])
        rec.secret = hook["secret"]
        body = await ask(client, DROUGHT, new_user())
        await drive(app.state.engine.persistence.db, [hook["id"]], lambda: len(rec.processed) >= 1)
        (log,) = await deliveries(client, hook["id"])

    assert [a.status for a in rec.attempts] == [500, 500, 204]
    assert len({a.id for a in rec.attempts}) == 1, "every retry carries the same X-Webhook-Id"
    assert all(a.verified for a in rec.attempts), "each attempt is signed afresh"
    # Each attempt carries its own time (signed), and the event's own time stays the same.
    payloads = [json.loads(a.body) for a in rec.attempts]
    stamps = [parse_ts(p["timestamp"]) for p in payloads]
    assert stamps == sorted(stamps) and stamps[-1] > stamps[0]
    assert [a.headers["x-webhook-timestamp"] for a in rec.attempts] == [
        p["timestamp"] for p in payloads
    ]
    assert len({p["created_at"] for p in payloads}) == 1
    assert parse_ts(payloads[0]["created_at"]) <= stamps[0]
    assert len({json.dumps(p["data"]) for p in payloads}) == 1
    (event,) = rec.events()
    assert event["data"]["conversation_id"] == body["thread_id"]
    assert log["id"] == rec.attempts[0].id
    assert log["status"] == "delivered"
    assert log["attempts"] == 3
    assert log["last_status"] == 204
    assert log["delivered_at"]


async def test_a_slow_endpoint_does_not_hold_up_another_partner_s_deliveries(
    app: FastAPI, receiver: tuple[Receiver, str]
) -> None:
    """Partner A's endpoint hangs; partner B's event, due later, is delivered by the server's
    own dispatcher while A's attempt is still in flight (deliveries run concurrently, one at a
    time per endpoint), not after A's attempt has timed out."""
    release = threading.Event()
    hanging = threading.Event()

    async def hang(request: Request) -> Response:
        hanging.set()
        await asyncio.to_thread(release.wait, 20)
        return Response(status_code=204, headers={"Connection": "close"})

    slow = Starlette(routes=[Route("/hook", hang, methods=["POST"])])
    rec, url = receiver
    a_key, _ = await app.state.keys.create(f"slow-{new_user()}", ["chat"])
    b_key, _ = await app.state.keys.create(f"fast-{new_user()}", ["chat"])
    with serve_in_thread(slow) as slow_url:
        try:
            async with api_client(app, a_key) as a, api_client(app, b_key) as b:
                slow_hook = await register(a, f"{slow_url}/hook", ["message.received"])
                fast_hook = await register(b, url, ["message.received"])
                rec.secret = fast_hook["secret"]
                await ask(a, DROUGHT, new_user())
                for _ in range(200):  # the server's dispatcher is sending A's event
                    if hanging.is_set():
                        break
                    await asyncio.sleep(0.05)
                assert hanging.is_set()
                await ask(b, DROUGHT, new_user())
                for _ in range(200):
                    if rec.processed:
                        break
                    await asyncio.sleep(0.05)
                assert rec.processed, "B's event was not delivered"
                (a_log,) = await deliveries(a, slow_hook["id"])
                # A's first attempt has not ended: B did not wait for it.
                assert (a_log["status"], a_log["attempts"]) == ("pending", 0), a_log
        finally:
            release.set()  # before the slow server stops: it waits for its handler


async def test_receiver_deduplicates_a_redelivered_event(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    """At-least-once: an endpoint that did the work but answered 500 gets the event again, with
    the same id and signature, so de-duplicating on X-Webhook-Id processes it once."""
    rec, url = receiver
    rec.lose_ack = 1
    _, key = partner
    async with api_client(app, key) as client:
        hook = await register(client, url, ["message.received"])
        rec.secret = hook["secret"]
        await ask(client, DROUGHT, new_user())
        await drive(app.state.engine.persistence.db, [hook["id"]], lambda: len(rec.attempts) >= 2)
        (log,) = await deliveries(client, hook["id"])

    first, again = rec.attempts
    assert (first.status, again.status) == (500, 204)
    assert first.id == again.id
    assert json.loads(first.body)["data"] == json.loads(again.body)["data"]
    assert again.verified
    assert len(rec.processed) == 1 and rec.duplicates == 1
    assert (log["status"], log["attempts"]) == ("delivered", 2)


# --------------------------------------------------------------------------- restart


async def test_events_survive_a_restart_and_are_delivered_later(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    settings = make_settings(tmp_path, checkpointer="sqlite")
    user = new_user()

    async with running_app(settings) as first_app, api_client(first_app) as client:
        hook = await register(client, url, list(EVENTS))
        body = await ask(client, DROUGHT, user)
        await ask(client, ASK_HUMAN, user, body["thread_id"])
        # One failed attempt each (the endpoint is down), so the log shows it.
        db = first_app.state.engine.persistence.db
        before = await attempt_each_once(
            client, Dispatcher(db, timeout=2, allowed=LOOPBACK), hook["id"]
        )

    assert len(before) == 4  # created, 2 × message.received, escalated
    for d in before:
        assert d["status"] == "pending"
        assert d["attempts"] >= 1
        assert d["last_error"] == "no response"  # not which network error: no port oracle
        assert d["delivered_at"] is None

    rec = Receiver(secret=hook["secret"])
    with serve_in_thread(rec.app(), port=port):
        async with running_app(settings) as second_app, api_client(second_app) as client:
            await drive(
                second_app.state.engine.persistence.db,
                [hook["id"]],
                lambda: len(rec.processed) >= len(before),
            )
            after = await deliveries(client, hook["id"])

    assert set(rec.processed) == {d["id"] for d in before}, "delivered with the original ids"
    assert all(a.verified for a in rec.attempts)
    assert sorted(e["event"] for e in rec.events()) == sorted(d["event"] for d in before)
    assert {d["status"] for d in after} == {"delivered"}
    for d in after:
        assert d["attempts"] >= 2


# --------------------------------------------------------------------------- CRUD


async def test_webhook_crud_and_ownership(app: FastAPI, partner: tuple[str, str]) -> None:
    _, key = partner
    rival_key, _ = await app.state.keys.create(f"rival-{new_user()}", ["chat"])
    async with api_client(app, key) as client, api_client(app, rival_key) as rival:
        a = await register(client, "https://partner.example/a", ["conversation.escalated"])
        b = await register(
            client, "https://partner.example/b", ["message.received", "feedback.submitted"]
        )
        assert a["id"] != b["id"] and a["secret"] != b["secret"]
        assert a["id"].startswith("wh_")

        listed = await client.get(WEBHOOKS)
        assert listed.status_code == 200
        assert [(w["id"], w["url"], sorted(w["events"])) for w in listed.json()] == [
            (a["id"], a["url"], ["conversation.escalated"]),
            (b["id"], b["url"], ["feedback.submitted", "message.received"]),
        ]
        assert all(w.get("secret") is None for w in listed.json()), "the secret is shown once"
        assert await deliveries(client, a["id"]) == []

        # Another partner sees none of it and cannot delete it.
        assert (await rival.get(WEBHOOKS)).json() == []
        assert_error(await rival.delete(f"{WEBHOOKS}/{a['id']}"), 404, "webhook_not_found")
        assert_error(await rival.get(f"{WEBHOOKS}/{a['id']}/deliveries"), 404, "webhook_not_found")

        deleted = await client.delete(f"{WEBHOOKS}/{a['id']}")
        assert deleted.status_code == 204
        assert [w["id"] for w in (await client.get(WEBHOOKS)).json()] == [b["id"]]
        assert_error(await client.delete(f"{WEBHOOKS}/{a['id']}"), 404, "webhook_not_found")
        assert_error(
            await client.delete(f"{WEBHOOKS}/wh_0123456789abcdef"), 404, "webhook_not_found"
        )


async def test_deleted_webhook_has_no_delivery_log(app: FastAPI, partner: tuple[str, str]) -> None:
    _, key = partner
    async with api_client(app, key) as client:
        hook = await register(client, "https://partner.example/gone", ["message.received"])
        assert (await client.delete(f"{WEBHOOKS}/{hook['id']}")).status_code == 204
        assert_error(
            await client.get(f"{WEBHOOKS}/{hook['id']}/deliveries"), 404, "webhook_not_found"
        )


async def test_deleted_webhook_gets_nothing_more(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    _, key = partner
    async with api_client(app, key) as client:
        hook = await register(client, url, ["message.received"])
        rec.secret = hook["secret"]
        assert (await client.delete(f"{WEBHOOKS}/{hook['id']}")).status_code == 204
        await ask(client, DROUGHT, new_user())
        await drive(app.state.engine.persistence.db, [hook["id"]], lambda: True)
        dispatcher = Dispatcher(app.state.engine.persistence.db, allowed=LOOPBACK)
        try:
            await dispatcher.deliver_due()
        finally:
            await dispatcher.aclose()
    assert rec.attempts == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"url": "https://partner.example/h", "events": ["conversation.deleted"]},
            "validation_error",
        ),
        ({"url": "https://partner.example/h", "events": []}, "validation_error"),
        ({"url": "https://partner.example/h"}, "validation_error"),
        ({"url": "ftp://partner.example/h", "events": ["message.received"]}, "invalid_webhook_url"),
        (
            {"url": "https://partner.example/h", "events": ["message.received"], "secret": "x"},
            "validation_error",
        ),
    ],
)
async def test_bad_webhook_registration_is_422(
    client: httpx.AsyncClient, body: dict[str, Any], code: str
) -> None:
    def ids(listing: list[dict[str, Any]]) -> list[str]:
        # Ids only: an endpoint left by another test may be failing deliveries meanwhile, and
        # its breaker state (consecutive_failures) changes between the two reads.
        return [w["id"] for w in listing]

    before = ids((await client.get(WEBHOOKS)).json())
    assert_error(await client.post(WEBHOOKS, json=body), 422, code)
    assert ids((await client.get(WEBHOOKS)).json()) == before


async def test_webhooks_need_an_api_key(app: FastAPI) -> None:
    async with api_client(app, None) as anonymous:
        assert_error(await anonymous.get(WEBHOOKS), 401, "invalid_api_key")
        assert_error(
            await anonymous.post(
                WEBHOOKS, json={"url": "https://x.example/h", "events": ["message.received"]}
            ),
            401,
            "invalid_api_key",
        )


# --------------------------------------------------------------------------- SSRF
REFUSED_TARGETS = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://[::1]:9000/hook",
    "http://0x7f000001/hook",
    "http://2130706433/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.10/hook",
    "http://0.0.0.0/hook",
    "http://224.0.0.1/hook",
]


async def test_loopback_private_and_reserved_targets_are_refused(tmp_path: Path) -> None:
    # No allow-list, as in production: the tests' own receivers would be refused too.
    settings = make_settings(tmp_path, webhook_allowed_networks=[])
    async with running_app(settings) as app, api_client(app) as client:
        for url in REFUSED_TARGETS:
            response = await client.post(
                WEBHOOKS, json={"url": url, "events": ["message.received"]}
            )
            assert_error(response, 422, "webhook_target_refused")
        with_credentials = {"url": "https://u:p@partner.example/h", "events": ["message.received"]}
        assert_error(await client.post(WEBHOOKS, json=with_credentials), 422, "invalid_webhook_url")
        assert (await client.get(WEBHOOKS)).json() == []


async def test_each_delivery_checks_the_target_again(
    app: FastAPI, partner: tuple[str, str], receiver: tuple[Receiver, str]
) -> None:
    # Registered while loopback was allowed (or while the name resolved elsewhere): a
    # dispatcher that does not allow it delivers nothing there.
    rec, url = receiver
    _, key = partner
    async with api_client(app, key) as client:
        hook = await register(client, url, ["message.received"])
        await ask(client, DROUGHT, new_user())
        strict = Dispatcher(app.state.engine.persistence.db, timeout=2)
        logged = await attempt_each_once(client, strict, hook["id"])
    assert rec.attempts == []
    assert logged and all(d["last_error"] == "address not allowed" for d in logged)


# --------------------------------------------------------------------------- limits


async def test_a_partner_has_at_most_the_configured_number_of_endpoints(
    api_settings_factory: Callable[..., Any],
) -> None:
    async with running_app(api_settings_factory(webhook_max_endpoints=2)) as app:
        key, _ = await app.state.keys.create(f"cap-{new_user()}", ["chat"])
        other, _ = await app.state.keys.create(f"cap-{new_user()}", ["chat"])
        target = "http://127.0.0.1:9/hook"
        async with api_client(app, key) as client, api_client(app, other) as neighbour:
            first = await register(client, target, ["message.received"])
            await register(client, target, ["message.received"])
            refused = await client.post(WEBHOOKS, json={"url": target, "events": EVENTS[:1]})
            assert_error(refused, 409, "too_many_webhooks")
            assert len((await client.get(WEBHOOKS)).json()) == 2
            await register(neighbour, target, ["message.received"])  # a cap per partner
            assert (await client.delete(f"{WEBHOOKS}/{first['id']}")).status_code == 204
            await register(client, target, ["message.received"])  # a place is free again


COOLDOWN = 2.0
THRESHOLD = 3


async def _breaker_of(client: httpx.AsyncClient, webhook_id: str) -> dict[str, Any]:
    response = await client.get(f"{WEBHOOKS}/{webhook_id}")
    assert response.status_code == 200, response.text
    hook: dict[str, Any] = response.json()
    assert {"state", "consecutive_failures", "disabled_until"} <= set(hook)
    return hook


async def _due_now(db: Database, webhook_id: str, *, parked: bool = False) -> None:
    """Retries due at once (no real backoff); an open breaker still holds its deliveries.
    Those it parked keep their time unless `parked`: `_until` runs this between reading the
    breaker and the next look, and must not move them in the moment the breaker opens."""
    now = datetime.now(UTC)
    still_open = (
        ""
        if parked
        else " AND webhook_id NOT IN (SELECT id FROM alim_webhooks WHERE disabled_until > ?)"
    )
    await db.run(
        "UPDATE alim_outbox SET next_attempt_at = ? WHERE webhook_id = ? AND status = 'pending' "
        f"AND next_attempt_at < ?{still_open}",
        (
            _iso(now - timedelta(seconds=1)),
            webhook_id,
            _iso(now + timedelta(seconds=LEASE_SECONDS / 2)),  # not leased ones
            *(() if parked else (_iso(now),)),
        ),
    )


async def _until(condition: Callable[[], Any], db: Database, webhook_id: str) -> None:
    """Make retries due and let the app's own dispatcher work until `condition()` holds."""
    for _ in range(150):
        if await condition():
            return
        await _due_now(db, webhook_id)
        await asyncio.sleep(0.1)
    raise AssertionError("the dispatcher did not get there")


async def _wait_until(moment: str) -> None:
    await asyncio.sleep(max(0.0, (parse_ts(moment) - datetime.now(UTC)).total_seconds()) + 0.05)


async def test_a_failing_endpoint_is_cut_off_by_its_breaker_and_nothing_is_lost(
    api_settings_factory: Callable[..., Any], receiver: tuple[Receiver, str]
) -> None:
    """Three failures in a row open the breaker: the endpoint's other deliveries are parked
    (not attempted; the log says `circuit open`), new events too. After the cool-down one trial
    is sent; it fails, and the breaker opens for twice as long. A delivery parked longer than
    the limit is recorded as failed. Once the endpoint answers, the trial closes the breaker
    and every parked delivery arrives. (The app's own dispatcher delivers.)"""
    rec, url = receiver
    rec.fail_first = 1000
    settings = api_settings_factory(
        webhook_breaker_failures=THRESHOLD, webhook_breaker_cooldown=COOLDOWN
    )
    async with running_app(settings) as app:
        key, _ = await app.state.keys.create(f"breaker-{new_user()}", ["chat"])
        db = app.state.engine.persistence.db
        async with api_client(app, key) as client:
            hook = await register(client, url, ["message.received"])
            rec.secret = hook["secret"]

            async def state_is(state: str) -> bool:
                return (await _breaker_of(client, hook["id"]))["state"] == state

            for _ in range(5):
                await ask(client, DROUGHT, new_user())
            await _until(lambda: state_is("open"), db, hook["id"])
            opened = await _breaker_of(client, hook["id"])
            assert opened["consecutive_failures"] == THRESHOLD
            assert len(rec.attempts) == THRESHOLD
            log = await deliveries(client, hook["id"])
            assert sum(d["attempts"] for d in log) == THRESHOLD
            parked = [d for d in log if d["attempts"] == 0]
            assert len(parked) >= 5 - THRESHOLD
            assert {d["last_error"] for d in parked} == {"circuit open"}
            assert {d["next_attempt_at"] for d in parked} == {opened["disabled_until"]}
            assert all(d["next_attempt_at"] >= opened["disabled_until"] for d in log)

            # Open: a new event is parked at once; nothing is attempted, even when due.
            await ask(client, DROUGHT, new_user())
            await _due_now(db, hook["id"], parked=True)
            await asyncio.sleep(0.7)  # the dispatcher polls every 0.5 s
            assert len(rec.attempts) == THRESHOLD
            newest = (await deliveries(client, hook["id"]))[0]
            assert (newest["attempts"], newest["last_error"]) == (0, "circuit open")
            assert await state_is("open")
            # One parked delivery is older than the park limit (a day): given up, on record.
            await db.run(
                "UPDATE alim_outbox SET created_at = ? WHERE id = ?",
                (_iso(datetime.now(UTC) - timedelta(days=2)), parked[-1]["id"]),
            )

            # Half open: one trial, which fails; open again, for twice the cool-down.
            await _wait_until(opened["disabled_until"])
            tried_at = datetime.now(UTC)
            await _until(lambda: state_is("open"), db, hook["id"])
            reopened = await _breaker_of(client, hook["id"])
            assert len(rec.attempts) == THRESHOLD + 1  # one trial
            again = (parse_ts(reopened["disabled_until"]) - tried_at).total_seconds()
            assert 1.5 * COOLDOWN <= again <= 2 * COOLDOWN + 1, again
            gave_up = {d["id"]: d for d in await deliveries(client, hook["id"])}[parked[-1]["id"]]
            assert (gave_up["status"], gave_up["last_error"]) == ("failed", "circuit open")

            # The endpoint recovers: the next trial closes the breaker, the rest follow.
            rec.fail_first = 0
            await _wait_until(reopened["disabled_until"])

            async def all_arrived() -> bool:
                return len(rec.processed) == 5

            await _until(all_arrived, db, hook["id"])
            closed = await _breaker_of(client, hook["id"])
            final = await deliveries(client, hook["id"])
    assert (closed["state"], closed["consecutive_failures"], closed["disabled_until"]) == (
        "closed",
        0,
        None,
    )
    assert sorted(d["status"] for d in final) == ["delivered"] * 5 + ["failed"]
    assert set(rec.processed) == {d["id"] for d in final if d["status"] == "delivered"}
    assert all(a.verified for a in rec.attempts)
