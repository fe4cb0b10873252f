"""`retrieve`: hybrid search of the knowledge base with the run's search options, then the
evidence the answer may quote (graphs.evidence)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from itertools import islice
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.runtime import Runtime

from alim.condense import condense_with_llm
from alim.knowledge.index import SearchOptions
from alim.llm import ModelChain
from alim.understanding import (
    Understanding,
    crop_words,
    crops_named,
    understand,
    without_crops,
)
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.evidence import evidence_for
from graphs.messages import text_of
from graphs.nodes import Node
from graphs.state import State

WEATHER_TOPICS = ("weather-protection", "irrigation")


def _questions(state: State) -> list[str]:
    return [text_of(m).strip() for m in state["messages"] if isinstance(m, HumanMessage)]


def search_query(state: State) -> str:
    """The text to search with: the question, completed from the previous one for a follow-up
    ("Bəs arpanı?" after "Payızlıq buğdanı nə vaxt səpmək lazımdır?")."""
    questions = _questions(state)
    text = questions[-1] if questions else ""
    u = Understanding.from_dict(state.get("understanding"))
    if u is None or not u.followup or len(questions) < 2:
        return text
    previous = questions[-2]
    if "crops" not in u.inherited:
        previous = without_crops(previous)  # the follow-up names its own crop
    elif not set(u.crops) & crops_named(previous):
        # The turn before named no crop either ("gübrəni nə vaxt verim bəs?" after "Qubada alma
        # bağım var..."): the words naming it come from the question that did, not the rest of
        # that question (the seed tubers' weight is no answer to how deep to plant them).
        named = (q for q in reversed(questions[:-2]) if set(u.crops) & crops_named(q))
        previous = " ".join((*map(crop_words, islice(named, 1)), previous))
    return f"{previous} {text}"


async def condensed_query(
    deps: GraphDeps, ctx: Context, state: State
) -> tuple[str, Understanding | None]:
    """`search_query` and the turn's understanding, or for a follow-up with a hosted model the
    model's standalone question and what it asks: the model has already said what the follow-up
    leaves out, so the rules' inherited crop and topic give way to it."""
    query = search_query(state)
    u = Understanding.from_dict(state.get("understanding"))
    questions = _questions(state)
    if u is None or not u.followup or len(questions) < 2:
        return query, u
    provider = ModelChain.for_choice(ctx.model, deps.config(), deps.models).primary
    if provider.name == "offline":
        return query, u
    standalone = await condense_with_llm(provider.model, questions[-2], questions[-1])
    if standalone is None:
        return query, u
    own = understand(standalone, place=u.place, zone=u.zone)
    return standalone, replace(own, followup=True, inherited=u.inherited)


def make_retrieve(deps: GraphDeps) -> Node:
    async def retrieve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = context_of(runtime)
        query, u = await condensed_query(deps, ctx, state)
        options = SearchOptions(
            search_type=ctx.search_type,
            k=ctx.k,
            score_threshold=ctx.score_threshold,
            fetch_k=ctx.fetch_k,
            lambda_mult=ctx.lambda_mult,
            # Weather turns get general weather-related guidance, not whatever names the place.
            topics=WEATHER_TOPICS if state.get("route") == "weather" else (),
        )
        language = state.get("language") or "az"

        def search() -> dict[str, Any]:
            chunks, evidence = evidence_for(deps.index(ctx.datasets), query, u, language, options)
            update: dict[str, Any] = {"query": query, "chunks": chunks, "evidence": evidence}
            if u is not None and evidence:
                # The topic the answer leads with: what a follow-up goes on about.
                update["understanding"] = replace(u, topic=evidence[0]["group"]).as_dict()
            return update

        return await asyncio.to_thread(search)

    return retrieve
