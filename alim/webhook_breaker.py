"""A circuit breaker per webhook endpoint, kept in its `alim_webhooks` row (so every replica
sees it, on SQLite and PostgreSQL alike).

- **closed**: deliveries are attempted. Every failed attempt (non-2xx, no response, address not
  allowed) adds to `consecutive_failures`; a success resets it.
- **open**: after `threshold` failures in a row the endpoint's deliveries are parked, not
  attempted, until `disabled_until`: their `next_attempt_at` moves there and their log says
  `circuit open` (PARKED). The cool-down doubles with every opening in a row (`cooldown`,
  capped at `max_cooldown`).
- **half_open**: once the cool-down has passed one dispatcher takes the trial (a
  compare-and-set on `disabled_until`, leased like a delivery): one delivery is attempted.
  Success closes the breaker, and the parked deliveries are due at once; failure opens it
  again, for longer.

No event is lost silently: a delivery parked longer than `park_limit` after its event is
recorded as `failed` with `circuit open` (GAVE_UP) when the breaker next opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from alim.db import Database, Row
from alim.settings import Settings
from alim.timeutil import iso

BreakerState = Literal["closed", "open", "half_open"]
PARKED = "circuit open"
"""`last_error` of a delivery that was not attempted because its endpoint's breaker is open."""
GAVE_UP = "circuit open"
"""`last_error` of a delivery recorded as failed after `park_limit` behind an open breaker."""


def state_of(row: Row, now: datetime | None = None) -> BreakerState:
    """The breaker's state from an `alim_webhooks` row (`breaker`, `disabled_until`)."""
    until = row["disabled_until"]
    if until is None:
        return "closed"
    if row["breaker"] == "half_open" or until <= iso(now or datetime.now(UTC)):
        return "half_open"  # a trial is in flight, or due
    return "open"


@dataclass(frozen=True)
class Breaker:
    threshold: int = 5
    """Failed attempts in a row that open the breaker."""
    cooldown: float = 60.0
    """Seconds of the first opening; doubled for each further opening in a row."""
    max_cooldown: float = 3600.0
    park_limit: float = 86400.0
    """Seconds after its event a parked delivery is given up (recorded as failed)."""
    trial_lease: float = 30.0
    """Seconds a trial holds the endpoint before another dispatcher may try."""

    @classmethod
    def of(cls, settings: Settings) -> Breaker:
        return cls(
            threshold=settings.webhook_breaker_failures,
            cooldown=settings.webhook_breaker_cooldown,
            max_cooldown=max(3600.0, settings.webhook_breaker_cooldown),
        )

    def cooldown_for(self, openings: int) -> float:
        return min(self.max_cooldown, self.cooldown * 2 ** max(openings - 1, 0))

    async def take_trial(self, db: Database, webhook_id: str, disabled_until: str) -> bool:
        """Claim the half-open endpoint's one trial; False if another dispatcher has it."""
        lease = iso(datetime.now(UTC) + timedelta(seconds=self.trial_lease))
        row = await db.run(
            "UPDATE alim_webhooks SET breaker = 'half_open', disabled_until = ? "
            "WHERE id = ? AND disabled_until = ? RETURNING id",
            (lease, webhook_id, disabled_until),
            "one",
        )
        return row is not None

    async def succeeded(self, db: Database, webhook_id: str) -> None:
        await db.run(
            "UPDATE alim_webhooks SET breaker = 'closed', consecutive_failures = 0, "
            "breaker_openings = 0, disabled_until = NULL WHERE id = ? "
            "AND (consecutive_failures <> 0 OR disabled_until IS NOT NULL)",
            (webhook_id,),
        )

    async def failed(self, db: Database, webhook_id: str, delivery_id: str) -> str | None:
        """Count a failed attempt; open the breaker when it trips (or when a trial failed) and
        park the endpoint's other pending deliveries. Returns `disabled_until` if it opened."""
        row = await db.run(
            "UPDATE alim_webhooks SET consecutive_failures = consecutive_failures + 1 "
            "WHERE id = ? RETURNING consecutive_failures, breaker, breaker_openings",
            (webhook_id,),
            "one",
        )
        if row is None:
            return None
        if row["breaker"] != "half_open" and int(row["consecutive_failures"]) < self.threshold:
            return None
        now = datetime.now(UTC)
        openings = int(row["breaker_openings"]) + 1
        until = iso(now + timedelta(seconds=self.cooldown_for(openings)))
        async with db.transaction():
            await db.run(
                "UPDATE alim_webhooks SET breaker = 'open', breaker_openings = ?, "
                "disabled_until = ? WHERE id = ?",
                (openings, until, webhook_id),
            )
            # The failed delivery keeps its own error; the others say why they wait.
            await db.run(
                "UPDATE alim_outbox SET next_attempt_at = ?, "
                "last_error = CASE WHEN id = ? THEN last_error ELSE ? END "
                "WHERE webhook_id = ? AND status = 'pending' AND next_attempt_at < ?",
                (until, delivery_id, PARKED, webhook_id, until),
            )
            await db.run(
                "UPDATE alim_outbox SET status = 'failed', last_error = ? "
                "WHERE webhook_id = ? AND status = 'pending' AND created_at < ?",
                (GAVE_UP, webhook_id, iso(now - timedelta(seconds=self.park_limit))),
            )
        return until


# Columns of `alim_webhooks` the breaker keeps (a migration of the webhooks store).
MIGRATION = [
    "ALTER TABLE alim_webhooks ADD COLUMN breaker TEXT NOT NULL DEFAULT 'closed'",
    "ALTER TABLE alim_webhooks ADD COLUMN consecutive_failures INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE alim_webhooks ADD COLUMN breaker_openings INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE alim_webhooks ADD COLUMN disabled_until TEXT",
]
