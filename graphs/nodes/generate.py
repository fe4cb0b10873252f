"""`generate`: the answer, grounded in the passages and the forecast. The only node whose model
tokens reach the user (other model calls, if any, are tagged `nostream`)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langgraph.runtime import Runtime

from alim.llm import ModelChain
from alim.offline import Grounding
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.messages import last_user_text, now_iso
from graphs.prompts import build_messages
from graphs.state import State
from tools.farm_rules import Advice

MAX_ARTICLES = 3
RELATIVE_RELEVANCE = 0.7
"""An article beyond the first is cited only if it is at least this relevant relative to it."""


def select_passages(chunks: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    """Chunks of the best articles, in the question's language when there are any; numbered."""
    same = [c for c in chunks if c.get("language") == language]
    best: dict[str, float] = {}
    for c in same or chunks:
        best[c["article_id"]] = max(best.get(c["article_id"], -1.0), c.get("relevance", 0.0))
    articles = list(best)
    top = best[articles[0]] if articles else 0.0
    keep = [
        a
        for a in articles[:MAX_ARTICLES]
        if a == articles[0] or best[a] >= RELATIVE_RELEVANCE * top
    ]
    return [
        {**c, "n": keep.index(c["article_id"]) + 1}
        for c in (same or chunks)
        if c["article_id"] in keep
    ]


def sources_of(passages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    best: dict[str, dict[str, Any]] = {}
    for p in passages:
        if p["article_id"] not in best or p["score"] > best[p["article_id"]]["score"]:
            best[p["article_id"]] = {
                "id": p["article_id"],
                "title": p["title"],
                "score": p["score"],
            }
    return list(best.values())


def grounding_of(state: State) -> Grounding:
    language = state.get("language") or "az"
    route = state.get("route") or "agronomy"
    passages = (
        select_passages(state.get("chunks") or [], language)
        if route in ("agronomy", "weather")
        else []
    )
    forecast = state.get("forecast")
    place = state.get("place") or {}
    return Grounding(
        question=last_user_text(state["messages"]),
        language=language,
        route=route,
        needs_question=bool(state.get("needs_question")),
        passages=passages,
        place=place.get("name"),
        forecast_days=(forecast or {}).get("days", []),
        advice=[
            Advice(a["rule"], tuple(a["dates"]), a["values"]).text(language)
            for a in state.get("advice") or []
        ],
        weather_unavailable=route == "weather" and forecast is None,
        profile=dict(state.get("profile") or {}) or None,
    )


def make_generate(deps: GraphDeps):  # type: ignore[no-untyped-def]
    async def generate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        g = grounding_of(state)
        ctx = context_of(runtime)
        chain = ModelChain.for_choice(ctx.model, deps.settings, deps.models)
        messages = build_messages(
            g, state["messages"], ctx.instructions, mask=deps.settings.pii_masking
        )
        answer: AIMessageChunk | None = None
        provider = chain.primary
        async for used, chunk in chain.astream(messages, g.model_dump()):
            provider = used
            answer = chunk if answer is None else answer + chunk
        text = str(answer.content) if answer is not None else ""
        usage = (
            dict(answer.usage_metadata) if answer is not None and answer.usage_metadata else None
        )
        sources = sources_of(g.passages)
        message = AIMessage(
            content=text,
            id=answer.id if answer is not None else None,  # same id: not re-emitted as a whole
            response_metadata={
                "model_name": provider.model_name,
                "created_at": now_iso(),
                "sources": sources,
            },
        )
        return {
            "messages": [message],
            "sources": sources,
            "model": provider.model_name,
            "usage": usage,
        }

    return generate
