"""`route`: classify the turn and reset the per-turn fields."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from alim.llm import ModelChain
from alim.llm_router import classify_with_llm
from alim.routing import RouteDecision, asks_forecast, names_a_person, pleasantry
from alim.text import detect_language
from alim.understanding import Understanding, understand
from alim.vocab import GROUNDED_ROUTES
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.messages import last_user_text
from graphs.nodes import Node
from graphs.state import TURN_RESET, State

THRESHOLD_KINDS = frozenset({"amount", "temperature"})
"""Kinds of question that, about the weather but with no place or time ahead, ask for a rule."""


async def _llm_decision(deps: GraphDeps, ctx: Context, text: str) -> RouteDecision | None:
    """Ask the run's hosted model; None (semantic router) for the offline model or on failure."""
    provider = ModelChain.for_choice(ctx.model, deps.config(), deps.models).primary
    if provider.name == "offline":
        return None
    return await classify_with_llm(provider.model, text)


NOT_FARMING = frozenset({"prices", "human_health"})
"""Uncovered topics that alone say nothing of farming: the dollar's rate, a share's price, a
child's sore throat."""


def _names_farming(u: Understanding) -> bool:
    """The question names a crop, a farming subject, practice or growth stage, or a farm matter
    the knowledge base does not cover (land papers, a tractor's loan, a sick cow)."""
    return bool(u.crops or u.subjects or u.practices or u.stages or set(u.uncovered) - NOT_FARMING)


def make_route(deps: GraphDeps) -> Node:
    async def route(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        text = last_user_text(state["messages"])
        language = context_of(runtime).language
        if language == "auto":
            # The state still holds the previous turn's language: a follow-up too short to
            # tell ("neche defe?") goes on in it.
            language = detect_language(text, previous=state.get("language"))
        ctx = context_of(runtime)
        router = deps.router()
        decision = router.rules(text)
        if decision is None and ctx.router == "llm":
            decision = await _llm_decision(deps, ctx, text)
        if decision is None:
            decision = await asyncio.to_thread(router.semantic, text)
        # The state still holds the previous turn's fields here (this update resets them).
        previous = Understanding.from_dict(state.get("understanding"))
        last = state.get("route")
        place = deps.gazetteer().find(text)
        own = understand(
            text,
            place=place.id if place else None,
            zone=(place.zone or None) if place else None,
        )
        understanding = own.following(previous, text)
        chosen, method = decision.route, decision.method
        semantic = method.startswith("semantic")
        if semantic and chosen == "human" and not names_a_person(text):
            # A hand-off is asked for by naming a person ("aqronomla danışmaq istəyirəm"); a
            # nearest exemplar alone hands over neither "bu proqram hansı suallarda kömək edə
            # bilər?" nor a loan question (which `assess` escalates as uncovered).
            if understanding.followup and last in GROUNDED_ROUTES:
                chosen, method = last, "followup"
            else:
                chosen, method = decision.runner_up or "agronomy", "semantic:no_person_named"
        if chosen == "weather" and place is None and not asks_forecast(text):
            if (
                understanding.practices
                or THRESHOLD_KINDS & set(understanding.kinds)
                or (semantic and own.subjects)
            ):
                # "Выше какой температуры не опрыскивать?" asks for a threshold, not a forecast;
                # "İstixanada səhər suvarım, yoxsa axşam?" how to water, whatever the weather
                # (the nearest exemplar's pick; a hosted model's stands).
                chosen, method = "agronomy", "rule:threshold_not_forecast"
            elif understanding.followup and last == "agronomy":
                # "А ветровые установки?" after a frost question goes on about the practice.
                chosen, method = "agronomy", "followup"
        if chosen == "weather" and understanding.crops and not asks_forecast(text):
            # "Zaqatalada fındıq tökülür, yağış da yağır: neçə gündən bir yığım?" and "ночи
            # были холодные, может из-за этого рис пустой?" ask about the crop: no time ahead.
            chosen, method = "agronomy", "rule:crop_not_forecast"
        if semantic and chosen == "smalltalk" and own.crops and not own.uncovered:
            # A question that names a crop is not small talk, whatever its nearest exemplar
            # ("абрикос отцвёл, а на ночь обещают −2: выдержит?"). An off-topic pick stands:
            # "акции Apple" names no fruit.
            chosen, method = "agronomy", "rule:names_a_crop"
        if semantic and chosen == "smalltalk" and own.uncovered and not pleasantry(text):
            # "ari ailesinde varroa gene var, hansi derman verim?" is a farmer's question the
            # knowledge base does not cover, whatever its nearest exemplar: an agronomist
            # answers it (`assess` escalates it), not the greeting.
            chosen, method = "agronomy", "rule:not_covered"
        if semantic and chosen == "off_topic" and _names_farming(own):
            # Near a nearest exemplar of the everyday requests, a question naming a crop,
            # fertiliser or a sick cow is still a farmer's ("kokun toxumunu ne qeder derin
            # sepim"), and so is one the knowledge base does not cover: the price a tea factory
            # pays per kilo of leaf, a tractor's engine oil (`assess` escalates those).
            chosen, method = "agronomy", "rule:names_farming"
        elif (
            semantic
            and chosen == "off_topic"
            and decision.runner_up == "human"
            and names_a_person(text)
        ):
            chosen, method = "human", "rule:person_named"  # "məni canlı məsləhətçiyə yönləndirin"
        if (
            chosen in ("smalltalk", "off_topic")
            and last in GROUNDED_ROUTES
            and not method.startswith("rule:")
            and (semantic or understanding.followup)
            and not pleasantry(text)
        ):
            # In a conversation about farming, a question the exemplars place nowhere goes on
            # with it: "ok so how do I deal with it?", "how level do the checks need to be?",
            # "Bəs arpanı?" (a hosted router's pick stands unless the rules see a follow-up).
            # Thanks and goodbyes stay small talk, and so does what a rule decided ("Кто ты?",
            # "а биткоин?").
            chosen, method = last, "followup"
            understanding = own.following(previous, text, goes_on=True)
        update: dict[str, Any] = {
            **TURN_RESET,
            "route": chosen,
            "route_method": method,
            "language": language,
            "needs_question": decision.needs_question,
            "understanding": understanding.as_dict(),
        }
        if chosen == "human":
            update["escalated"] = True
            update["escalation_reason"] = "user_requested"
        return update

    return route
