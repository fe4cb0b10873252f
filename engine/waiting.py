"""A message on a thread that waits for an agronomist.

It is stored in the thread (the graph stays paused for the expert: the message is added as the
`escalate` node's update, so `await_human` is still next), kept with the escalation for the
agronomist to read, and acknowledged in the farmer's language. No bot answer is generated: the
expert's reply answers the whole conversation. A `engine.turn.Turn` with its own `events()`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from langchain_core.messages import HumanMessage

from alim.events import Event, MetadataEvent, SourcesEvent, TokenEvent
from alim.handoff import Escalation
from alim.i18n import text as _t
from alim.text import detect_language
from alim.threads import ThreadInfo
from alim.timeutil import now_iso
from engine.bookkeeping import RunRecord
from engine.request import TurnRequest
from engine.turn import Turn
from graphs.nodes.escalate import HANDOFF_MODEL

if TYPE_CHECKING:
    from engine.service import Engine


def farmer_reason(reason: str) -> str:
    """The reason a farmer's client is told: a conversation an expert kept after answering
    (`kept_by_expert`, the inbox's own reason) waits for that person as if asked for."""
    return reason if reason in ("low_confidence", "user_requested") else "user_requested"


class WaitingTurn(Turn):
    def __init__(
        self,
        engine: Engine,
        request: TurnRequest,
        info: ThreadInfo,
        stack: AsyncExitStack,
        escalation: Escalation,
        run_id: str | None = None,
    ):
        super().__init__(engine, request, info, stack, run_id)
        self.escalation = escalation

    @property
    def question_record(self) -> dict[str, Any] | None:
        return None  # kept with the escalation (the graph waits; it never sees this message)

    async def events(self) -> AsyncGenerator[Event]:
        started = time.monotonic()
        try:
            yield MetadataEvent(self.thread_id, self.run_id)
            text = self.request.message
            config: dict[str, Any] = {"configurable": {"thread_id": self.info.key}}
            message = HumanMessage(
                text,
                id=str(uuid.uuid4()),
                additional_kwargs={"created_at": now_iso(), "while_waiting": True},
            )
            graph = self.engine.graph
            await graph.aupdate_state(config, {"messages": [message]}, as_node="escalate")
            state = await graph.aget_state(config)
            timing = {"latency_ms": round((time.monotonic() - started) * 1000, 1)}
            await self.engine.books.waiting(
                RunRecord(self.run_id, self.request.owner, self.info),
                self.escalation.id,
                text,
                len(state.values.get("messages", [])),
                timing,
            )
            language = self.request.context.language
            if language == "auto":  # a message too short to tell goes on in the thread's language
                language = detect_language(text, previous=state.values.get("language"))
            yield TokenEvent(_t("waiting_ack", language))
            yield SourcesEvent(
                sources=[],
                confidence=None,
                escalated=True,
                escalation_reason=farmer_reason(self.escalation.reason),
                route="human",
                model=HANDOFF_MODEL,
                escalation_id=self.escalation.id,
            )
        finally:
            await self.aclose()
