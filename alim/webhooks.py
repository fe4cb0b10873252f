"""Signed webhooks through a transactional outbox.

- Partners register endpoints for events (`conversation.created`, `conversation.escalated`,
  `conversation.resolved`, `message.received`, `feedback.submitted`).
- `Outbox.emit()` writes one delivery row per subscribed endpoint; callers do it inside the same
  database transaction as the change the event describes, so an event exists iff the change does.
- `Dispatcher` delivers due rows: POST of the JSON payload `{id, event, timestamp, data}` with
  `X-Webhook-Signature: sha256=<hex HMAC-SHA256 of the raw body with the endpoint's secret>`,
  `X-Webhook-Timestamp` (also inside the signed body, so a replay is detectable) and
  `X-Webhook-Id` (the same for every retry: de-duplicate on it). Non-2xx or no answer → retried
  with exponential backoff and jitter, at least once, across restarts (rows live in the database),
  up to MAX_ATTEMPTS; every attempt is logged in the row (the endpoint's delivery log).
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
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from alim.db import Database
from alim.errors import InvalidRequest, NotFound

log = logging.getLogger(__name__)

EVENTS = (
    "conversation.created",
    "conversation.escalated",
    "conversation.resolved",
    "message.received",
    "feedback.submitted",
)
MAX_ATTEMPTS = 12
BASE_DELAY = 1.0
MAX_DELAY = 600.0
LEASE_SECONDS = 30.0

_SCHEMA = [
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


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def backoff(attempts: int) -> float:
    """Seconds before the next try: exponential, capped, with full jitter on the upper half."""
    ceiling = min(MAX_DELAY, BASE_DELAY * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


class WebhookStore:
    def __init__(self, db: Database):
        self.db = db

    async def setup(self) -> None:
        for statement in _SCHEMA:
            await self.db.run(statement)

    async def register(self, partner: str, url: str, events: list[str]) -> dict[str, Any]:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest("webhook url must be http(s)", code="invalid_webhook_url")
        unknown = set(events) - set(EVENTS)
        if unknown or not events:
            raise InvalidRequest(f"unknown or no events: {sorted(unknown)}", code="invalid_events")
        record = {
            "id": f"wh_{uuid.uuid4().hex[:16]}",
            "partner": partner,
            "url": url,
            "secret": "whsec_" + secrets.token_urlsafe(24),
            "events": ",".join(sorted(set(events))),
            "created_at": _iso(_now()),
        }
        await self.db.run(
            "INSERT INTO alim_webhooks (id, partner, url, secret, events, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            tuple(record.values()),
        )
        return {**record, "events": sorted(set(events))}

    async def list(self, partner: str) -> list[dict[str, Any]]:
        rows = await self.db.run(
            "SELECT id, url, events, created_at FROM alim_webhooks "
            "WHERE partner = ? AND deleted_at IS NULL ORDER BY created_at, id",
            (partner,),
            "all",
        )
        return [{**r, "events": r["events"].split(",")} for r in rows]

    async def delete(self, partner: str, webhook_id: str) -> None:
        row = await self.db.run(
            "SELECT id FROM alim_webhooks WHERE id = ? AND partner = ? AND deleted_at IS NULL",
            (webhook_id, partner),
            "one",
        )
        if row is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        await self.db.run(
            "UPDATE alim_webhooks SET deleted_at = ? WHERE id = ?", (_iso(_now()), webhook_id)
        )

    async def deliveries(
        self, partner: str, webhook_id: str, limit: int = 50
    ) -> builtins.list[dict[str, Any]]:
        owner = await self.db.run(
            "SELECT id FROM alim_webhooks WHERE id = ? AND partner = ? AND deleted_at IS NULL",
            (webhook_id, partner),
            "one",
        )
        if owner is None:
            raise NotFound("webhook not found", code="webhook_not_found")
        return list(
            await self.db.run(
                "SELECT id, event, status, attempts, created_at, delivered_at, last_status, "
                "last_error, next_attempt_at FROM alim_outbox WHERE webhook_id = ? "
                "ORDER BY created_at DESC LIMIT ?",
                (webhook_id, limit),
                "all",
            )
        )


class Outbox:
    def __init__(self, db: Database):
        self.db = db

    async def emit(self, partner: str, event: str, data: dict[str, Any]) -> int:
        """Queue `event` for every endpoint of `partner` subscribed to it; returns how many.
        Call inside the transaction that makes the change the event describes."""
        assert event in EVENTS, event
        hooks = await self.db.run(
            "SELECT id, events FROM alim_webhooks WHERE partner = ? AND deleted_at IS NULL",
            (partner,),
            "all",
        )
        now = _iso(_now())
        count = 0
        for hook in hooks:
            if event not in hook["events"].split(","):
                continue
            delivery_id = f"evt_{uuid.uuid4().hex}"
            payload = {"id": delivery_id, "event": event, "timestamp": now, "data": data}
            await self.db.run(
                "INSERT INTO alim_outbox (id, webhook_id, event, payload, next_attempt_at, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (delivery_id, hook["id"], event, json.dumps(payload, ensure_ascii=False), now, now),
            )
            count += 1
        return count


class Dispatcher:
    """Delivers due outbox rows. Safe with several replicas: a row is claimed by moving its
    `next_attempt_at` forward by a lease in one UPDATE before it is sent."""

    def __init__(self, db: Database, *, timeout: float = 5.0, poll_seconds: float = 0.5):
        self.db = db
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self._client: httpx.AsyncClient | None = None

    async def _claim(self) -> dict[str, Any] | None:
        now = _now()
        return await self.db.run(  # type: ignore[no-any-return]
            "UPDATE alim_outbox SET next_attempt_at = ? WHERE id = ("
            " SELECT id FROM alim_outbox WHERE status = 'pending' AND next_attempt_at <= ?"
            " ORDER BY next_attempt_at LIMIT 1) AND next_attempt_at <= ? "
            "RETURNING id, webhook_id, payload, attempts",
            (_iso(now + timedelta(seconds=LEASE_SECONDS)), _iso(now), _iso(now)),
            "one",
        )

    async def deliver_due(self) -> int:
        """Try every due delivery once; returns how many were attempted."""
        attempted = 0
        while (row := await self._claim()) is not None:
            attempted += 1
            await self._attempt(row)
        return attempted

    async def _attempt(self, row: dict[str, Any]) -> None:
        hook = await self.db.run(
            "SELECT url, secret, deleted_at FROM alim_webhooks WHERE id = ?",
            (row["webhook_id"],),
            "one",
        )
        attempts = int(row["attempts"]) + 1
        if hook is None or hook["deleted_at"] is not None:
            await self._finish(row["id"], "cancelled", attempts, None, "endpoint deleted")
            return
        body = row["payload"].encode("utf-8")
        payload = json.loads(row["payload"])
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
            if self._client is None:
                self._client = httpx.AsyncClient(timeout=self.timeout)
            response = await self._client.post(hook["url"], content=body, headers=headers)
            status = response.status_code
            if 200 <= status < 300:
                await self._finish(row["id"], "delivered", attempts, status, None)
                return
            error = f"HTTP {status}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        if attempts >= MAX_ATTEMPTS:
            await self._finish(row["id"], "failed", attempts, status, error)
            return
        next_at = _iso(_now() + timedelta(seconds=backoff(attempts)))
        await self.db.run(
            "UPDATE alim_outbox SET attempts = ?, next_attempt_at = ?, last_status = ?, "
            "last_error = ? WHERE id = ?",
            (attempts, next_at, status, error, row["id"]),
        )

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
                _iso(_now()) if status == "delivered" else None,
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
