"""Signed webhooks through a transactional outbox.

- Partners register endpoints for events (`conversation.created`, `conversation.escalated`,
  `conversation.resolved`, `conversation.closed`, `message.received`, `feedback.submitted`).
- `Outbox.emit()` writes one delivery row per subscribed endpoint; callers do it inside the same
  database transaction as the change the event describes, so an event exists iff the change does.
- `Dispatcher` delivers due rows: POST of the JSON payload `{id, event, timestamp, created_at,
  data}` with `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body with the endpoint's
  secret>`, `X-Webhook-Timestamp` (the attempt's time, also inside the signed body: each retry is
  signed afresh, so a receiver that rejects old timestamps still takes a late retry, and a
  replayed old attempt stays detectable), `created_at` (when the event happened) and
  `X-Webhook-Id` (the same for every retry: de-duplicate on it). Non-2xx or no answer → retried
  with exponential backoff and jitter, at least once, across restarts (rows live in the database),
  up to MAX_ATTEMPTS; every attempt is logged in the row (the endpoint's delivery log).
  Deliveries run concurrently (CONCURRENCY per dispatcher), one at a time per endpoint, so a
  slow endpoint holds one slot and its own queue, not every partner's. An endpoint that keeps
  failing is cut off for a while by its circuit breaker (`alim.webhook_breaker`): its
  deliveries are parked, not attempted, then one trial decides.
- A partner has at most `max_endpoints` endpoints (ALIM_WEBHOOK_MAX_ENDPOINTS): one more is
  409 `too_many_webhooks`.
- Each outbox row knows its thread (`thread_key`, derived from the partner and the payload's
  `user_id` and `conversation_id`): `Outbox.forget_thread()` strips a deleted thread's pending
  and logged payloads down to ids (`PAYLOAD_IDS`), so no conversation text outlives it there.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import hmac
import json
import logging
import random
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx
from typing_extensions import TypedDict

from alim.db import Database, Row
from alim.errors import Conflict, InvalidRequest, NotFound
from alim.migrations import MigratedStore, Migration
from alim.netguard import IpNetwork, check_target
from alim.threads import Owner, thread_key
from alim.timeutil import iso, now_iso
from alim.webhook_breaker import MIGRATION as BREAKER_MIGRATION
from alim.webhook_breaker import PARKED, Breaker, BreakerState, state_of

log = logging.getLogger(__name__)

EVENTS = (
    "conversation.created",
    "conversation.escalated",
    "conversation.claimed",
    "conversation.resolved",
    "conversation.closed",
    "message.received",
    "feedback.submitted",
)
MAX_ATTEMPTS = 12
BASE_DELAY = 1.0
MAX_DELAY = 600.0
LEASE_SECONDS = 30.0
PAYLOAD_IDS = frozenset(
    {
        "conversation_id",
        "user_id",
        "run_id",
        "escalation_id",
        "feedback_id",
        "assigned_agent",
        "score",
        "route",
        "reason",
        "confidence",
    }
)
"""The payload `data` fields kept once a thread is forgotten: ids, codes and numbers, no text."""
BACKFILL_BATCH = 500

# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_webhooks (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        url TEXT NOT NULL,
        secret TEXT NOT NULL,
        events TEXT NOT NULL,
        created_at TEXT NOT NULL,
        deleted_at TEXT
    )""",
    """CREATE TABLE IF NOT EXISTS alim_outbox (
        id TEXT PRIMARY KEY,
        webhook_id TEXT NOT NULL,
        event TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        delivered_at TEXT,
        last_status INTEGER,
        last_error TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS alim_outbox_due ON alim_outbox (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS alim_outbox_webhook ON alim_outbox (webhook_id, created_at)",
]


class Webhook(TypedDict):
    """A registered endpoint as listed (never its secret), with its circuit breaker."""

    id: str
    url: str
    events: list[str]
    created_at: str
    state: BreakerState
    consecutive_failures: int
    disabled_until: str | None


class NewWebhook(TypedDict):
    """A just-registered endpoint: the only time its secret is shown."""

    id: str
    partner: str
    url: str
    secret: str
    events: list[str]
    created_at: str


class Delivery(TypedDict):
    """One row of an endpoint's delivery log."""

    id: str
    event: str
    status: str
    attempts: int
    created_at: str
    delivered_at: str | None
    last_status: int | None
    last_error: str | None
    next_attempt_at: str


class _Claimed(TypedDict):
    id: str
    webhook_id: str
    payload: str
    attempts: int


def _webhook(row: Row) -> Webhook:
    state = state_of(row)
    return Webhook(
        id=row["id"],
        url=row["url"],
        events=row["events"].split(","),
        created_at=row["created_at"],
        state=state,
        consecutive_failures=int(row["consecutive_failures"]),
        disabled_until=row["disabled_until"] if state == "open" else None,
    )


_WEBHOOK_COLUMNS = "id, url, events, created_at, breaker, consecutive_failures, disabled_until"


def payload_thread_key(partner: str, data: dict[str, Any]) -> str | None:
    """The thread an event is about, from its payload's ids (None if it names none)."""
    user_id, conversation_id = data.get("user_id"), data.get("conversation_id")
    if isinstance(user_id, str) and isinstance(conversation_id, str):
        return thread_key(Owner(partner, user_id), conversation_id)
    return None


async def _backfill_thread_keys(db: Database) -> None:
    """Rows queued before version 1: derive their thread from the payload."""
    after = ""
    while True:
        rows = await db.fetch_all(
            "SELECT o.id, o.payload, w.partner FROM alim_outbox o "
            "JOIN alim_webhooks w ON w.id = o.webhook_id "
            "WHERE o.thread_key IS NULL AND o.id > ? ORDER BY o.id LIMIT ?",
            (after, BACKFILL_BATCH),
        )
        for row in rows:
            try:
                data = json.loads(row["payload"]).get("data") or {}
            except (ValueError, AttributeError):
                continue
            key = payload_thread_key(row["partner"], data) if isinstance(data, dict) else None
            if key is not None:
                await db.run("UPDATE alim_outbox SET thread_key = ? WHERE id = ?", (key, row["id"]))
        if len(rows) < BACKFILL_BATCH:
            return
        after = rows[-1]["id"]


_MIGRATIONS: list[Migration] = [
    _V0,
    # 1: outbox rows know their thread, so a deleted thread's payloads can be found and erased.
    [
        "ALTER TABLE alim_outbox ADD COLUMN thread_key TEXT",
        "CREATE INDEX IF NOT EXISTS alim_outbox_thread ON alim_outbox (thread_key)",
        _backfill_thread_keys,
    ],
    # 2: each endpoint's circuit breaker.
    BREAKER_MIGRATION,
]


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def backoff(attempts: int) -> float:
    """Seconds before the next try: exponential, capped, with full jitter on the upper half."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class WebhookStore(MigratedStore):
    """Endpoints and (through its migrations) the outbox table too."""

    STORE: ClassVar[str] = "webhooks"
    MIGRATIONS: ClassVar[list[Migration]] = _MIGRATIONS

    def __init__(
        self, db: Database, allowed: Sequence[IpNetwork] = (), max_endpoints: int = 10
    ) -> None:
        self.db = db
        self.allowed = tuple(allowed)
        """Private networks endpoints may be in (alim.netguard)."""
        self.max_endpoints = max_endpoints

    async def register(self, partner: str, url: str, events: list[str]) -> NewWebhook:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest("webhook url must be http(s)", code="invalid_webhook_url")
        unknown = set(events) - set(EVENTS)
        if unknown or not events:
            raise InvalidRequest(f"unknown or no events: {sorted(unknown)}", code="invalid_events")
        await check_target(url, self.allowed)
        hook = NewWebhook(
            id=f"wh_{uuid.uuid4().hex[:16]}",
            partner=partner,
            url=url,
            secret="whsec_" + secrets.token_urlsafe(24),
            events=sorted(set(events)),
            created_at=now_iso(),
        )
        # Counted and added under a lock: two concurrent registrations cannot both take the
        # last place.
        async with self.db.locked_transaction(f"alim:webhooks:{partner}"):
            row = await self.db.fetch_one(
                "SELECT COUNT(*) AS n FROM alim_webhooks WHERE partner = ? AND deleted_at IS NULL",
                (partner,),
            )
            if row is not None and int(row["n"]) >= self.max_endpoints:
                cap = self.max_endpoints
                raise Conflict(
                    f"at most {cap} webhook endpoints per partner; delete one first",
                    code="too_many_webhooks",
                )
            await self.db.insert(
                "alim_webhooks",
                {
                    "id": hook["id"],
                    "partner": hook["partner"],
                    "url": hook["url"],
                    "secret": hook["secret"],
                    "events": ",".join(hook["events"]),
                    "created_at": hook["created_at"],
                },
            )
        return hook

    async def list(self, partner: str) -> builtins.list[Webhook]:
        rows = await self.db.fetch_all(
            f"SELECT {_WEBHOOK_COLUMNS} FROM alim_webhooks "
            "WHERE partner = ? AND deleted_at IS NULL ORDER BY created_at, id",
            (partner,),
        )
        return [_webhook(r) for r in rows]

    async def get(self, partner: str, webhook_id: str) -> Webhook:
        row = await self.db.fetch_one(
            f"SELECT {_WEBHOOK_COLUMNS} FROM alim_webhooks "
            "WHERE id = ? AND partner = ? AND deleted_at IS NULL",
            (webhook_id, partner),
        )
        if row is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        return _webhook(row)

    async def delete(self, partner: str, webhook_id: str) -> None:
        row = await self.db.fetch_one(
            "SELECT id FROM alim_webhooks WHERE id = ? AND partner = ? AND deleted_at IS NULL",
            (webhook_id, partner),
        )
        if row is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        await self.db.run(
            "UPDATE alim_webhooks SET deleted_at = ? WHERE id = ?", (now_iso(), webhook_id)
        )

    async def deliveries(
        self, partner: str, webhook_id: str, limit: int = 50
    ) -> builtins.list[Delivery]:
        owner = await self.db.fetch_one(
            "SELECT id FROM alim_webhooks WHERE id = ? AND partner = ? AND deleted_at IS NULL",
            (webhook_id, partner),
        )
        if owner is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        rows = await self.db.fetch_all(
            "SELECT id, event, status, attempts, created_at, delivered_at, last_status, "
            "last_error, next_attempt_at FROM alim_outbox WHERE webhook_id = ? "
            "ORDER BY created_at DESC LIMIT ?",
            (webhook_id, limit),
        )
        return [
            Delivery(
                id=r["id"],
                event=r["event"],
                status=r["status"],
                attempts=int(r["attempts"]),
                created_at=r["created_at"],
                delivered_at=r["delivered_at"],
                last_status=r["last_status"],
                last_error=r["last_error"],
                next_attempt_at=r["next_attempt_at"],
            )
            for r in rows
        ]


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def endpoints(self, partner: str) -> list[Row]:
        """The partner's live endpoints, as `emit` reads them."""
        return await self.db.fetch_all(
            "SELECT id, events, breaker, disabled_until FROM alim_webhooks "
            "WHERE partner = ? AND deleted_at IS NULL",
            (partner,),
        )

    async def emit(
        self,
        partner: str,
        event: str,
        data: dict[str, Any],
        *,
        thread_key: str | None = None,
        endpoints: Sequence[Row] | None = None,
    ) -> int:
        """Queue `event` for every endpoint of `partner` subscribed to it; returns how many.
        Call inside the transaction that makes the change the event describes. The row's thread
        is `thread_key`, else derived from `data`'s `user_id` and `conversation_id`.
        `endpoints`: `self.endpoints(partner)`, read once for several events of a transaction."""
        assert event in EVENTS, event
        hooks = await self.endpoints(partner) if endpoints is None else endpoints
        key = thread_key if thread_key is not None else payload_thread_key(partner, data)
        now = now_iso()
        count = 0
        for hook in hooks:
            if event not in hook["events"].split(","):
                continue
            delivery_id = f"evt_{uuid.uuid4().hex}"
            payload = {"id": delivery_id, "event": event, "timestamp": now, "data": data}
            parked = state_of(hook) == "open"  # waits for the breaker, and says so
            await self.db.insert(
                "alim_outbox",
                {
                    "id": delivery_id,
                    "webhook_id": hook["id"],
                    "event": event,
                    "payload": json.dumps(payload, ensure_ascii=False),
                    "next_attempt_at": hook["disabled_until"] if parked else now,
                    "created_at": now,
                    "thread_key": key,
                    "last_error": PARKED if parked else None,
                },
            )
            count += 1
        return count

    async def forget_thread(self, thread_key: str) -> int:
        """The thread is gone: strip its events' payloads (pending, retried or delivered) down
        to `PAYLOAD_IDS`; pending ones are still delivered, without text. Returns how many
        payloads changed. Call in the transaction that deletes the thread."""
        rows = await self.db.fetch_all(
            "SELECT id, payload FROM alim_outbox WHERE thread_key = ?", (thread_key,)
        )
        changed = 0
        for row in rows:
            payload = json.loads(row["payload"])
            data = payload.get("data")
            if not isinstance(data, dict):
                continue
            kept = {k: v for k, v in data.items() if k in PAYLOAD_IDS}
            if kept == data:
                continue
            payload["data"] = kept
            await self.db.run(
                "UPDATE alim_outbox SET payload = ? WHERE id = ?",
                (json.dumps(payload, ensure_ascii=False), row["id"]),
            )
            changed += 1
        return changed


CONCURRENCY = 8
"""Deliveries in flight at once per dispatcher (each to a different endpoint)."""


class Dispatcher:
    """Delivers due outbox rows. Safe with several replicas: a row is claimed by moving its
    `next_attempt_at` forward by a lease in one UPDATE before it is sent."""

    def __init__(
        self,
        db: Database,
        *,
        timeout: float = 5.0,
        poll_seconds: float = 0.5,
        allowed: Sequence[IpNetwork] = (),
        breaker: Breaker | None = None,
    ) -> None:
        self.db = db
        self.breaker = breaker or Breaker()
        self.allowed = tuple(allowed)
        """Private networks endpoints may be in; checked again before every attempt."""
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self._client: httpx.AsyncClient | None = None

    async def _claim(self, busy: Sequence[str] = ()) -> _Claimed | None:
        """The next due delivery of an endpoint not in `busy` (none is sent to an endpoint that
        has an attempt in flight here: a slow endpoint holds one slot, in order) whose breaker
        is not open (nor held by another dispatcher's trial)."""
        now = datetime.now(UTC)
        skip = ""
        if busy:
            skip = f" AND o.webhook_id NOT IN ({', '.join('?' for _ in busy)})"
        row = await self.db.fetch_one(
            "UPDATE alim_outbox SET next_attempt_at = ? WHERE id = ("
            " SELECT o.id FROM alim_outbox o JOIN alim_webhooks w ON w.id = o.webhook_id"
            " WHERE o.status = 'pending' AND o.next_attempt_at <= ?"
            " AND (w.disabled_until IS NULL OR w.disabled_until <= ?)"
            f"{skip} ORDER BY o.next_attempt_at LIMIT 1) AND next_attempt_at <= ? "
            "RETURNING id, webhook_id, payload, attempts",
            (iso(now + timedelta(seconds=LEASE_SECONDS)), iso(now), iso(now), *busy, iso(now)),
        )
        if row is None:
            return None
        return _Claimed(
            id=row["id"],
            webhook_id=row["webhook_id"],
            payload=row["payload"],
            attempts=int(row["attempts"]),
        )

    async def deliver_due(self) -> int:
        """Try every due delivery once, up to CONCURRENCY at a time and one at a time per
        endpoint (so one partner's slow endpoint does not hold up another's deliveries);
        returns how many were attempted."""
        attempted = 0
        in_flight: dict[asyncio.Task[None], str] = {}
        try:
            while True:
                while len(in_flight) < CONCURRENCY:
                    row = await self._claim(sorted(set(in_flight.values())))
                    if row is None:
                        break
                    task = asyncio.create_task(self._attempt(row))
                    in_flight[task] = row["webhook_id"]
                    attempted += 1
                if not in_flight:
                    return attempted
                # Wake up for a finished attempt, or to take deliveries that became due since.
                done, _ = await asyncio.wait(
                    in_flight, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    in_flight.pop(task)
                    if task.exception() is not None:
                        log.error("webhook delivery failed", exc_info=task.exception())
        finally:
            for task in in_flight:
                task.cancel()

    async def _attempt(self, row: _Claimed) -> None:
        hook: Row | None = await self.db.fetch_one(
            "SELECT url, secret, deleted_at, disabled_until FROM alim_webhooks WHERE id = ?",
            (row["webhook_id"],),
        )
        attempts = row["attempts"] + 1
        if hook is None or hook["deleted_at"] is not None:
            await self._finish(row["id"], "cancelled", attempts, None, "endpoint deleted")
            return
        until = hook["disabled_until"]
        if until is not None and until > now_iso():
            # The breaker opened after this delivery was claimed: parked, not attempted.
            await self.db.run(
                "UPDATE alim_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ?",
                (until, PARKED, row["id"]),
            )
            return
        if until is not None and not await self.breaker.take_trial(
            self.db, row["webhook_id"], until
        ):
            # Another dispatcher took the trial: this one waits for its verdict, unattempted.
            await self.db.run(
                "UPDATE alim_outbox SET next_attempt_at = ? WHERE id = ?", (now_iso(), row["id"])
            )
            return
        payload = json.loads(row["payload"])
        payload["created_at"] = payload.get("created_at") or payload["timestamp"]
        payload["timestamp"] = now_iso()  # this attempt's: signed with it
        body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ALIM-Webhooks/1",
            "X-Webhook-Id": payload["id"],
            "X-Webhook-Event": payload["event"],
            "X-Webhook-Timestamp": payload["timestamp"],
            "X-Webhook-Signature": sign(hook["secret"], body),
        }
        status: int | None = None
        error: str | None = None
        try:
            await check_target(hook["url"], self.allowed)  # the name may resolve elsewhere now
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self.timeout)
            response = await self._client.post(hook["url"], content=body, headers=headers)
            status = response.status_code
            if 200 <= status < 300:
                await self._finish(row["id"], "delivered", attempts, status, None)
                await self.breaker.succeeded(self.db, row["webhook_id"])
                return
            error = f"HTTP {status}"
        except InvalidRequest:
            error = "address not allowed"
        except httpx.HTTPError:
            # One text for refused, timed out and reset: the log must not map a network.
            error = "no response"
        if attempts >= MAX_ATTEMPTS:
            await self._finish(row["id"], "failed", attempts, status, error)
        else:
            next_at = iso(datetime.now(UTC) + timedelta(seconds=backoff(attempts)))
            await self.db.run(
                "UPDATE alim_outbox SET attempts = ?, next_attempt_at = ?, last_status = ?, "
                "last_error = ? WHERE id = ?",
                (attempts, next_at, status, error, row["id"]),
            )
        await self.breaker.failed(self.db, row["webhook_id"], row["id"])

    async def _finish(
        self,
        delivery_id: str,
        status: str,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> None:
        await self.db.run(
            "UPDATE alim_outbox SET status = ?, attempts = ?, delivered_at = ?, last_status = ?, "
            "last_error = ? WHERE id = ?",
            (
                status,
                attempts,
                now_iso() if status == "delivered" else None,
                http_status,
                error,
                delivery_id,
            ),
        )

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception:  # a broken endpoint or a DB blip must not stop deliveries
                log.exception("webhook delivery loop error")
            await asyncio.sleep(self.poll_seconds)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
