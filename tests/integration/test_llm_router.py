"""The optional LLM router against a local OpenAI-compatible server (faked at the wire)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from engine import Context, GraphDeps
from graphs.builder import build_graph
from tests.conftest import make_settings
from tests.support.fake_llm import FakeLLM
from tests.support.fakes import HashingEmbeddings


def _graph(tmp_path: Path, url: str) -> Any:
    settings = make_settings(
        tmp_path,
        llm_provider="openai",
        openai_base_url=f"{url}/v1",
        openai_api_key="test-key",
        llm_max_retries=0,
        llm_timeout=5,
    )
    return build_graph(
        GraphDeps(settings, _embeddings=HashingEmbeddings()), checkpointer=InMemorySaver()
    )


async def _run(graph: Any, text: str, **ctx: Any) -> tuple[dict[str, Any], list[str]]:
    config = {"configurable": {"thread_id": "t"}}
    streamed_from: list[str] = []
    async for mode, payload in graph.astream(
        {"messages": [HumanMessage(text)]},
        config,
        context=Context(**ctx),
        stream_mode=["messages", "values"],
    ):
        if mode == "messages":
            streamed_from.append(payload[1]["langgraph_node"])
    state = await graph.aget_state(config)
    return state.values, streamed_from


async def test_the_llm_decides_the_route_and_its_tokens_do_not_stream(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.reply = '{"route": "weather", "reason": "asks about rain"}'
    values, streamed_from = await _run(
        _graph(tmp_path, url), "Quraqlıqda suvarmanı necə aparım?", router="llm"
    )
    assert values["route"] == "weather"
    assert values["route_method"] == "llm"
    assert llm.requests[0]["response_format"] == {"type": "json_object"}
    assert "route" not in streamed_from  # the router's JSON never reaches the user's stream


async def test_a_failing_llm_router_falls_back_to_the_semantic_router(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.reply = "not json at all"
    values, _ = await _run(_graph(tmp_path, url), "Quraqlıqda suvarmanı necə aparım?", router="llm")
    assert values["route"] == "agronomy"
    assert values["route_method"] == "semantic"


async def test_rules_come_before_the_llm(fake_llm: tuple[FakeLLM, str], tmp_path: Path) -> None:
    llm, url = fake_llm
    values, _ = await _run(_graph(tmp_path, url), "Mənə aqronomla danışmaq lazımdır", router="llm")
    assert values["route"] == "human"
    assert values["route_method"] == "rule:person_requested"
    assert llm.requests == []  # no model call at all


async def test_the_semantic_router_is_the_default(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.reply = '{"route": "weather"}'
    values, _ = await _run(_graph(tmp_path, url), "Quraqlıqda suvarmanı necə aparım?")
    assert values["route_method"] == "semantic"
    assert all("response_format" not in r for r in llm.requests)  # only the answer was asked


async def test_a_follow_up_is_condensed_by_the_hosted_model_for_retrieval(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    graph = _graph(tmp_path, url)
    await _run(graph, "How do I protect my orchard from a late frost?")
    # The model's standalone question (in the fake, every reply) names the wheat: retrieval finds
    # the wheat article, which the rule-based condensation of the frost question would not.
    llm.reply = "Когда сеять озимую пшеницу?"
    values, streamed_from = await _run(graph, "And the timing for that?")

    condense, answer = llm.requests[-2:]
    asked = condense["messages"][-1]["content"]
    assert "How do I protect my orchard from a late frost?" in asked
    assert "And the timing for that?" in asked
    assert "Озимая пшеница" in answer["messages"][-1]["content"]
    assert [s["id"] for s in values["sources"]][:1] == ["wheat.ru"]
    assert set(streamed_from) == {"generate"}  # the condensed question is not streamed


async def test_a_failing_condensation_keeps_the_rule_based_query(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    graph = _graph(tmp_path, url)
    await _run(graph, "How do I protect my orchard from a late frost?")
    llm.script = ["ok", "500", "ok"]  # the first turn's answer, the condensation, the answer
    values, _ = await _run(graph, "And the timing for that?")
    assert values["messages"][-1].content == llm.reply
    assert values["sources"] and values["sources"][0]["id"] == "frost.en"
