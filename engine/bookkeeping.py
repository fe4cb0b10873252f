"""What a turn leaves behind besides its checkpoints: message counts, escalations, thread status,
the run's analytics row and the webhook events. A completed turn writes them in one transaction."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from alim.analytics import Analytics
from alim.db import Database
from alim.handoff import EscalationStore
from alim.threads import Owner, ThreadInfo, ThreadRegistry
from alim.webhooks import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRecord:
    """Who ran what: the fields every bookkeeping row of a run shares."""

    run_id: str
    owner: Owner
    info: ThreadInfo

    @property
    def webhook_base(self) -> dict[str, Any]:
        # Ids only: no conversation text is kept in the outbox (a deleted thread must not
        # live on in pending deliveries).
        return {"conversation_id": self.info.thread_id, "user_id": self.owner.user_id}

    @property
    def analytics_ids(self) -> dict[str, Any]:
        """The ids of the run's analytics row."""
        return {
            "run_id": self.run_id,
            "partner": self.owner.partner,
            "user_id": self.owner.user_id,
            "thread_id": self.info.thread_id,
            "thread_key": self.info.key,
        }


class Bookkeeper:
    def __init__(
        self,
        db: Database,
        threads: ThreadRegistry,
        escalations: EscalationStore,
        outbox: Outbox,
        analytics: Analytics,
    ):
        self.db = db
        self.threads = threads
        self.escalations = escalations
        self.outbox = outbox
        self.analytics = analytics

    async def finished(
        self,
        run: RunRecord,
        final: dict[str, Any],
        *,
        question: str,
        interrupted: bool,
        message_count: int,
        timing: dict[str, Any],
    ) -> str | None:
        """Record a completed turn; returns the escalation's id when the turn waits for one."""
        owner, info = run.owner, run.info
        base = run.webhook_base
        escalation_id = None
        async with self.db.transaction():
            await self.threads.record_messages(info.key, message_count)
            hooks = await self.outbox.endpoints(owner.partner)  # once for the turn's events
            if info.message_count == 0:
                await self.outbox.emit(owner.partner, "conversation.created", base, endpoints=hooks)
            await self.outbox.emit(
                owner.partner,
                "message.received",
                {**base, "run_id": run.run_id, "route": final.get("route")},
                endpoints=hooks,
            )
            if interrupted:
                escalation = await self.escalations.open(
                    partner=owner.partner,
                    user_id=owner.user_id,
                    thread_id=info.thread_id,
                    thread_key=info.key,
                    run_id=run.run_id,
                    question=question,
                    reason=final.get("escalation_reason") or "low_confidence",
                    confidence=final.get("confidence"),
                    sources=final.get("sources") or [],
                    language=final.get("language"),
                    route=final.get("route"),
                    region=(final.get("profile") or {}).get("region"),
                    crops=list((final.get("profile") or {}).get("crops") or []),
                )
                escalation_id = escalation.id
                await self.threads.set_status(info.key, "awaiting_human")
                await self.outbox.emit(
                    owner.partner,
                    "conversation.escalated",
                    {
                        **base,
                        "escalation_id": escalation.id,
                        "reason": escalation.reason,
                        "confidence": escalation.confidence,
                    },
                    endpoints=hooks,
                )
            await self.analytics.record_run(
                **run.analytics_ids,
                route=final.get("route"),
                confidence=final.get("confidence"),
                escalated=bool(final.get("escalated")),
                escalation_reason=final.get("escalation_reason"),
                outcome="ok",
                tokens=(final.get("usage") or {}).get("total_tokens"),
                model=final.get("model"),
                **timing,
            )
        return escalation_id

    async def waiting(
        self,
        run: RunRecord,
        escalation_id: str,
        text: str,
        message_count: int,
        timing: dict[str, Any],
    ) -> None:
        """A message sent while the thread waits for an agronomist: kept with the escalation,
        counted in the thread, announced (ids only) and recorded as a run."""
        owner, info = run.owner, run.info
        async with self.db.transaction():
            await self.escalations.add_followup(escalation_id, text)
            await self.threads.record_messages(info.key, message_count)
            await self.outbox.emit(
                owner.partner,
                "message.received",
                {**run.webhook_base, "run_id": run.run_id, "route": "human"},
            )
            await self.analytics.record_run(
                **run.analytics_ids,
                route="human",
                outcome="ok",  # not a new escalation: the open one goes on
                **timing,
            )

    async def failed(self, run: RunRecord, outcome: str, timing: dict[str, Any]) -> None:
        """The analytics row of a run that did not complete (error or cancellation)."""
        try:
            await asyncio.shield(
                self.analytics.record_run(**run.analytics_ids, outcome=outcome, **timing)
            )
        except Exception:  # analytics must never hide the run's own failure
            log.warning("could not record the failed run %s", run.run_id)
