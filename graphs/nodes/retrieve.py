"""`retrieve`: hybrid search of the knowledge base with the run's search options."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from alim.knowledge.index import SearchOptions
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.messages import last_user_text
from graphs.state import State
from tools.knowledge import hit_to_dict

WEATHER_TOPICS = ("weather-protection", "irrigation")


def make_retrieve(deps: GraphDeps):  # type: ignore[no-untyped-def]
    async def retrieve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        query = last_user_text(state["messages"])
        ctx = context_of(runtime)
        options = SearchOptions(
            search_type=ctx.search_type,
            k=ctx.k,
            score_threshold=ctx.score_threshold,
            fetch_k=ctx.fetch_k,
            lambda_mult=ctx.lambda_mult,
            # Weather turns get general weather-related guidance, not whatever names the place.
            topics=WEATHER_TOPICS if state.get("route") == "weather" else (),
        )
        hits = await asyncio.to_thread(lambda: deps.index().search(query, options))
        return {"chunks": [hit_to_dict(h) for h in hits]}

    return retrieve
