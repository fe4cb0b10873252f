"""`generate`: the answer, grounded in the passages and the forecast. The only node whose model
tokens reach the user (other model calls, if any, are tagged `nostream`)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks
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
    """Chunks of the best articles (by retrieval order), numbered for citation.

    Topics are ranked as retrieved; for each topic (article group) the version in the question's
    language is used when it was retrieved too, so a better answer in another language is never
    dropped for a worse one in the question's language. Topics far less relevant than the best
    one are left out."""
    best: dict[str, float] = {}  # article -> best relevance
    groups: dict[str, list[str]] = {}  # group -> its retrieved articles, in retrieval order
    language_of: dict[str, str] = {}
    for c in chunks:
        article, group = c["article_id"], c.get("group") or c["article_id"]
        best[article] = max(best.get(article, -1.0), c.get("relevance", 0.0))
        language_of[article] = c.get("language", "")
        if article not in groups.setdefault(group, []):
            groups[group].append(article)
    chosen: list[str] = []
    top: float | None = None
    for articles in groups.values():
        relevance = max(best[a] for a in articles)
        if top is None:
            top = relevance
        elif top <= 0 or relevance < RELATIVE_RELEVANCE * top or len(chosen) == MAX_ARTICLES:
            continue
        native = [a for a in articles if language_of[a] == language]
        chosen.append(native[0] if native else articles[0])
    return [
        {**c, "n": chosen.index(c["article_id"]) + 1} for c in chunks if c["article_id"] in chosen
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
        chain = ModelChain.for_choice(ctx.model, deps.config(), deps.models)
        messages = build_messages(
            g, state["messages"], ctx.instructions, mask=deps.config().pii_masking
        )
        chunks: list[AIMessageChunk] = []
        provider = chain.primary
        async for used, chunk in chain.astream(messages, g.model_dump()):
            provider = used
            chunks.append(chunk)
        # One merge at the end (adding chunk by chunk copies the growing text each time).
        answer = add_ai_message_chunks(chunks[0], *chunks[1:]) if chunks else None
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
