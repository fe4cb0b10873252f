"""`route`: classify the turn and reset the per-turn fields."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from alim.text import detect_language
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.messages import last_user_text
from graphs.state import TURN_RESET, State


def make_route(deps: GraphDeps):  # type: ignore[no-untyped-def]
    async def route(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        text = last_user_text(state["messages"])
        language = context_of(runtime).language
        if language == "auto":
            language = detect_language(text)
        decision = await asyncio.to_thread(deps.router().classify, text)
        update: dict[str, Any] = {
            **TURN_RESET,
            "route": decision.route,
            "route_method": decision.method,
            "language": language,
            "needs_question": decision.needs_question,
        }
        if decision.route == "human":
            update["escalated"] = True
            update["escalation_reason"] = "user_requested"
        return update

    return route
