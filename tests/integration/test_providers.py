"""Chat-model providers over real HTTP, against the local OpenAI-compatible stub server.

ChatOpenAI talks to `<url>/v1/chat/completions`, ChatGroq to `<url>/openai/v1/chat/completions`;
the stub's `script` decides per request whether it answers, fails (500, 429), hangs or sends junk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from alim.errors import ConfigError, ProviderUnavailable, RunTimeout
from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
)
from alim.handoff import EscalationStore
from alim.llm import ModelChain, make_chat_model
from alim.offline import OFFLINE_MODEL_NAME, Grounding
from alim.settings import DEV_API_KEY, Settings
from alim.threads import Owner
from api.app import create_app
from api.sse import with_outcome
from engine import Engine, GraphDeps, TurnRequest
from graphs.nodes.escalate import handoff_message
from tests.conftest import make_settings
from tests.support.fake_llm import FakeLLM
from tests.support.fakes import HashingEmbeddings
from tests.support.servers import serve_in_thread

QUESTION = [HumanMessage("Suvarmanı nə vaxt aparım?")]
SMALLTALK_EN = "Hello! I am ALİM, an agronomy assistant for farmers."
OWNER = Owner("p", "u")


def smalltalk_grounding() -> dict[str, Any]:
    return Grounding(question="hello there", route="smalltalk", language="en").model_dump()


def openai_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "openai",
        "openai_base_url": f"{url}/v1",
        "openai_api_key": "test-key",
        "llm_max_retries": 0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


def groq_settings(tmp_path: Path, url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "llm_provider": "groq",
        "groq_base_url": url,  # without /v1: the SDK appends /openai/v1
        "groq_api_key": "test-key",
        "llm_max_retries": 0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def stream_chunks(settings: Settings) -> list[AIMessageChunk]:
    provider = make_chat_model(settings.primary_provider, settings)
    return [chunk async for chunk in provider.model.astream(QUESTION)]


async def chain_text(settings: Settings) -> tuple[str, list[str]]:
    """The chain's whole answer and the providers that produced it, in order."""
    chain = ModelChain.for_choice("", settings, {})
    parts: list[str] = []
    names: list[str] = []
    async for provider, chunk in chain.astream(QUESTION, smalltalk_grounding()):
        parts.append(str(chunk.content))
        if provider.name not in names:
            names.append(provider.name)
    return "".join(parts), names


@pytest.fixture
def path_recording_llm() -> Iterator[tuple[FakeLLM, str, list[str]]]:
    """The stub LLM behind a thin ASGI wrapper that records each request's path."""
    llm = FakeLLM()
    paths: list[str] = []
    app = llm.app()

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            paths.append(scope["path"])
        await app(scope, receive, send)

    with serve_in_thread(recording) as url:
        yield llm, url, paths


# --------------------------------------------------------------------------- streaming


async def test_openai_streams_the_reply_in_chunks_with_usage(
    path_recording_llm: tuple[FakeLLM, str, list[str]], tmp_path: Path
) -> None:
    llm, url, paths = path_recording_llm
    chunks = await stream_chunks(openai_settings(tmp_path, url, openai_model="qwen2.5-7b"))

    texts = [str(c.content) for c in chunks if c.content]
    assert len(texts) >= 3
    assert "".join(texts) == llm.reply
    assert paths == ["/v1/chat/completions"]
    [body] = llm.requests
    assert body["model"] == "qwen2.5-7b"
    assert body["stream"] is True
    assert body["messages"][-1]["content"] == QUESTION[0].content
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    assert total.usage_metadata is not None
    assert total.usage_metadata["input_tokens"] == 11
    assert total.usage_metadata["output_tokens"] == len(llm.tokens())


async def test_groq_streams_the_reply_in_chunks(
    path_recording_llm: tuple[FakeLLM, str, list[str]], tmp_path: Path
) -> None:
    llm, url, paths = path_recording_llm
    settings = groq_settings(tmp_path, url, groq_model="llama-3.1-8b-instant")
    chunks = await stream_chunks(settings)

    texts = [str(c.content) for c in chunks if c.content]
    assert len(texts) >= 3
    assert "".join(texts) == llm.reply
    assert paths == ["/openai/v1/chat/completions"]
    [body] = llm.requests
    assert body["model"] == "llama-3.1-8b-instant"
    assert body["stream"] is True


async def test_default_model_names_are_sent(fake_llm: tuple[FakeLLM, str], tmp_path: Path) -> None:
    llm, url = fake_llm
    await stream_chunks(openai_settings(tmp_path, url))
    await stream_chunks(groq_settings(tmp_path, url))
    assert [r["model"] for r in llm.requests] == ["gpt-4o-mini", "llama-3.3-70b-versatile"]


# --------------------------------------------------------------------------- retries


@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_a_500_is_retried_and_the_answer_arrives(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    llm, url = fake_llm
    llm.script = ["500", "ok"]
    text, names = await chain_text(make(tmp_path, url, llm_max_retries=2))
    assert text == llm.reply
    assert len(llm.requests) == 2
    assert names == [make(tmp_path, url).primary_provider]


@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_a_429_with_retry_after_is_retried(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    llm, url = fake_llm
    llm.script = ["429", "ok"]
    text, _ = await chain_text(make(tmp_path, url, llm_max_retries=2))
    assert text == llm.reply
    assert len(llm.requests) == 2


async def test_retries_are_bounded(fake_llm: tuple[FakeLLM, str], tmp_path: Path) -> None:
    llm, url = fake_llm
    llm.script = ["500"]
    with pytest.raises(ProviderUnavailable):
        await chain_text(openai_settings(tmp_path, url, llm_max_retries=1))
    assert len(llm.requests) == 2  # the first try and one retry, no more


# --------------------------------------------------------------------------- fallbacks


@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_persistent_500_falls_back_to_offline(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    llm, url = fake_llm
    llm.script = ["500"]
    text, names = await chain_text(make(tmp_path, url, llm_fallbacks=["offline"]))
    assert text.startswith(SMALLTALK_EN)
    assert llm.reply not in text
    assert names == ["offline"]
    assert len(llm.requests) == 1


async def test_persistent_500_without_fallback_is_provider_unavailable(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["500"]
    with pytest.raises(ProviderUnavailable) as info:
        await chain_text(openai_settings(tmp_path, url))
    assert info.value.code == "provider_unavailable"
    assert info.value.status == 503
    assert "openai" in info.value.message


async def test_fallback_to_a_second_hosted_provider(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    """groq down → openai answers (the stub fails the first request, answers the second)."""
    llm, url = fake_llm
    llm.script = ["500", "ok"]
    settings = groq_settings(
        tmp_path, url, openai_base_url=f"{url}/v1", openai_api_key="k", llm_fallbacks=["openai"]
    )
    text, names = await chain_text(settings)
    assert text == llm.reply
    assert names == ["openai"]
    assert [r["model"] for r in llm.requests] == ["llama-3.3-70b-versatile", "gpt-4o-mini"]


# --------------------------------------------------------------------------- hang, junk


@pytest.mark.timeout(20)
@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_a_hanging_server_times_out(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    llm, url = fake_llm
    llm.script = ["hang"]
    llm.hang_seconds = 3  # keeps the stub's shutdown short; the client gives up after 0.5 s
    with pytest.raises(ProviderUnavailable):
        await chain_text(make(tmp_path, url, llm_timeout=0.5))
    assert len(llm.requests) == 1


@pytest.mark.timeout(20)
async def test_a_hanging_server_falls_back_to_offline(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["hang"]
    llm.hang_seconds = 3
    settings = openai_settings(tmp_path, url, llm_timeout=0.5, llm_fallbacks=["offline"])
    text, names = await chain_text(settings)
    assert text.startswith(SMALLTALK_EN)
    assert names == ["offline"]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_a_malformed_stream_is_provider_unavailable(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    llm, url = fake_llm
    llm.script = ["malformed"]
    with pytest.raises(ProviderUnavailable) as info:
        await chain_text(make(tmp_path, url))
    assert info.value.code == "provider_unavailable"


@pytest.mark.timeout(20)
async def test_a_malformed_stream_falls_back_to_offline(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["malformed"]
    text, names = await chain_text(openai_settings(tmp_path, url, llm_fallbacks=["offline"]))
    assert text.startswith(SMALLTALK_EN)
    assert names == ["offline"]


@pytest.fixture
def breaking_llm() -> Iterator[tuple[list[dict[str, Any]], str]]:
    """An OpenAI-compatible stub that streams two tokens, then breaks off with junk."""
    requests: list[dict[str, Any]] = []

    async def completions(request: Request) -> StreamingResponse:
        requests.append(await request.json())

        async def stream():  # type: ignore[no-untyped-def]
            for token in ("Suvarmanı", " səhər"):
                chunk = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "fake",
                    "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}],
                }
                yield f"data: {json.dumps(chunk)}\n\n".encode()
            yield b"data: {not json\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield requests, url


@pytest.mark.timeout(20)
async def test_a_stream_that_breaks_off_is_not_patched_with_a_fallback(
    breaking_llm: tuple[list[dict[str, Any]], str], tmp_path: Path
) -> None:
    """Once tokens reached the user, a second model must not append another answer."""
    requests, url = breaking_llm
    chain = ModelChain.for_choice("", openai_settings(tmp_path, url, llm_fallbacks=["offline"]), {})
    seen: list[tuple[str, str]] = []
    with pytest.raises(ProviderUnavailable):
        async for provider, chunk in chain.astream(QUESTION, smalltalk_grounding()):
            seen.append((provider.name, str(chunk.content)))
    assert "".join(text for _, text in seen) == "Suvarmanı səhər"
    assert {name for name, _ in seen} == {"openai"}
    assert len(requests) == 1


# --------------------------------------------------------------------------- whole graph


async def run_turn(settings: Settings, message: str) -> list[Event]:
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    async with Engine.open(settings, deps) as engine:
        return [e async for e in with_outcome(engine.stream(TurnRequest(message, OWNER)))]


def answer_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TokenEvent))


def summary_of(events: list[Event]) -> SourcesEvent:
    [summary] = [e for e in events if isinstance(e, SourcesEvent)]
    return summary


async def test_engine_streams_the_openai_answer_grounded_in_the_knowledge_base(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    settings = openai_settings(tmp_path, url, llm_max_retries=2)
    events = await run_turn(settings, "Quraqlıqda suvarmanı necə etməli?")

    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert isinstance(events[-1], DoneEvent)
    assert answer_of(events) == llm.reply
    assert len([e for e in events if isinstance(e, TokenEvent)]) >= 3
    # Only the answer node's tokens reach the user: none before `generate` starts.
    generate_at = events.index(NodeEvent("generate"))
    first_token_at = next(i for i, e in enumerate(events) if isinstance(e, TokenEvent))
    assert first_token_at > generate_at
    summary = summary_of(events)
    assert summary.model == "gpt-4o-mini"
    assert summary.route == "agronomy"
    assert [s["id"] for s in summary.sources] == ["drought.az"]
    assert summary.usage is not None and summary.usage["output_tokens"] == len(llm.tokens())

    [body] = llm.requests
    assert body["model"] == "gpt-4o-mini"
    assert body["stream"] is True
    sent = "\n".join(str(m["content"]) for m in body["messages"])
    # The knowledge passage (tests/fixtures/kb/drought.az.md) reached the model.
    assert "Torpağın üstünü malçla örtün, nəmliyi qoruyur." in sent
    assert "Quraqlıqda suvarmanı necə etməli?" in sent
    assert body["messages"][0]["role"] == "system"


async def test_engine_answer_is_kept_in_the_thread(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    settings = openai_settings(tmp_path, url)
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    async with Engine.open(settings, deps) as engine:
        result = await engine.invoke(TurnRequest("Quraqlıqda suvarmanı necə etməli?", OWNER))
        _, history = await engine.history(OWNER, result.thread_id)
    assert result.response == llm.reply
    assert result.model == "gpt-4o-mini"
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "Quraqlıqda suvarmanı necə etməli?"),
        ("assistant", llm.reply),
    ]


@pytest.mark.parametrize("make", [openai_settings, groq_settings], ids=["openai", "groq"])
async def test_invoke_asks_the_model_for_the_whole_answer_and_falls_back_without_a_stream(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, make: Any
) -> None:
    """A caller that reads only the whole answer gets it from one non-streaming request (Groq
    included: built to stream, ChatGroq streamed every call whatever the caller asked)."""
    llm, url = fake_llm
    llm.script = ["ok", "500"]
    settings = make(tmp_path, url, llm_fallbacks=["offline"])
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    async with Engine.open(settings, deps) as engine:
        whole = await engine.invoke(TurnRequest("Quraqlıqda suvarmanı necə etməli?", OWNER))
        fallen = await engine.invoke(TurnRequest("Quraqlıqda malç nə verir?", OWNER))
    assert [bool(r.get("stream")) for r in llm.requests] == [False, False]
    default = {"openai": settings.openai_model, "groq": settings.groq_model}
    assert (whole.response, whole.model) == (llm.reply, default[settings.primary_provider])
    assert whole.usage is not None and whole.usage["output_tokens"] == len(llm.tokens())
    assert fallen.model == OFFLINE_MODEL_NAME
    assert "Torpağın üstünü malçla örtün" in fallen.response


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "invoke"])
@pytest.mark.parametrize("reply", ["NO_ANSWER", "**NO_ANSWER**.", "NO_ANSWER: not covered."])
async def test_a_model_that_finds_no_answer_hands_the_turn_to_an_agronomist(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, reply: str, stream: bool
) -> None:
    """Told to reply NO_ANSWER when the passages do not answer, the model does: the farmer
    reads the hand-off message, never the marker, and the question waits in the queue."""
    llm, url = fake_llm
    llm.reply = reply
    settings = openai_settings(tmp_path, url)
    question = "Quraqlıqda suvarmanı necə etməli?"
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    async with Engine.open(settings, deps) as engine:
        if stream:
            events = [e async for e in with_outcome(engine.stream(TurnRequest(question, OWNER)))]
            summary, answer = summary_of(events), answer_of(events)
            escalation_id, escalated, reason = (
                summary.escalation_id,
                summary.escalated,
                summary.escalation_reason,
            )
        else:
            result = await engine.invoke(TurnRequest(question, OWNER))
            answer, escalation_id = result.response, result.escalation_id
            escalated, reason = result.escalated, result.escalation_reason
        assert escalation_id is not None
        waiting = await EscalationStore(engine.persistence.db).get(OWNER.partner, escalation_id)

    assert "NO_ANSWER" not in answer
    assert answer == handoff_message("low_confidence", "az")
    assert (escalated, reason) == (True, "low_confidence")
    assert waiting is not None and waiting.question == question and waiting.status == "open"
    [body] = llm.requests
    assert "reply with exactly NO_ANSWER" in body["messages"][0]["content"]


@pytest.mark.parametrize(
    ("question", "reply", "route", "offered"),
    [
        # Begins like the marker ("NO"): held a piece, then streamed whole.
        (
            "Quraqlıqda suvarmanı necə etməli?",
            "NO till: leave the stubble on the field and sow into it.",
            "agronomy",
            True,
        ),
        # Smalltalk has no passages to judge: the model is not offered the marker.
        ("Hello there!", "Hello! I am ALİM.", "smalltalk", False),
    ],
)
async def test_a_reply_that_is_not_the_marker_streams_whole(
    fake_llm: tuple[FakeLLM, str],
    tmp_path: Path,
    question: str,
    reply: str,
    route: str,
    offered: bool,
) -> None:
    llm, url = fake_llm
    llm.reply = reply
    events = await run_turn(openai_settings(tmp_path, url), question)

    assert answer_of(events) == reply
    summary = summary_of(events)
    assert (summary.route, summary.escalated) == (route, False)
    assert ("NO_ANSWER" in llm.requests[0]["messages"][0]["content"]) is offered


async def test_engine_reports_provider_unavailable_when_the_model_is_down(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["500"]
    events = await run_turn(openai_settings(tmp_path, url), "Quraqlıqda suvarmanı necə etməli?")
    errors = [e for e in events if isinstance(e, ErrorEvent)]
    assert [e.code for e in errors] == ["provider_unavailable"]
    assert answer_of(events) == ""
    assert isinstance(events[-1], DoneEvent)


async def test_engine_falls_back_to_the_offline_answer(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["500"]
    settings = openai_settings(tmp_path, url, llm_fallbacks=["offline"])
    events = await run_turn(settings, "Quraqlıqda suvarmanı necə etməli?")
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    answer = answer_of(events)
    assert "Torpağın üstünü malçla örtün" in answer
    assert "Oflayn rejim" in answer
    assert summary_of(events).model == OFFLINE_MODEL_NAME


async def test_a_fallback_without_a_key_does_not_break_a_healthy_primary(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GROQ_API_KEY", raising=False)
    llm, url = fake_llm
    settings = openai_settings(tmp_path, url, llm_fallbacks=["groq"])
    try:
        events = await run_turn(settings, "Quraqlıqda suvarmanı necə etməli?")
    except ConfigError:
        return  # refusing the configuration when the engine opens is acceptable too
    assert not [e for e in events if isinstance(e, ErrorEvent)]
    assert answer_of(events) == llm.reply


# --------------------------------------------------------------------------- run deadline


@pytest.mark.timeout(30)
async def test_the_run_deadline_cuts_a_model_call_that_streams_nothing(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    """A hosted model that accepts the request and then says nothing for longer than
    ALIM_RUN_TIMEOUT: the turn ends at the deadline with run_timeout, not when the model wakes."""
    llm, url = fake_llm
    llm.script = ["hang"]
    llm.hang_seconds = 8
    settings = openai_settings(tmp_path, url, llm_timeout=60, run_timeout=1.0)
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    loop = asyncio.get_running_loop()
    async with Engine.open(settings, deps) as engine:
        started = loop.time()
        with pytest.raises(RunTimeout):
            await engine.invoke(TurnRequest("Quraqlıqda suvarmanı necə etməli?", OWNER))
        assert loop.time() - started < 5  # well before the model would have answered (8 s)
        # The thread is free again and keeps no half turn.
        llm.script = ["ok"]
        again = await engine.invoke(TurnRequest("Salam", OWNER))
        assert again.response


@pytest.mark.timeout(30)
async def test_the_run_deadline_cuts_an_answer_that_streams_past_it(tmp_path: Path) -> None:
    """A model that keeps sending pieces, each well within the deadline, but whose answer as a
    whole outlasts ALIM_RUN_TIMEOUT: the farmer sees the pieces sent so far, then run_timeout
    at the deadline, and the thread is free for the next question."""
    settings = make_settings(tmp_path, offline_delay=0.2, run_timeout=1.0)
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    loop = asyncio.get_running_loop()
    async with Engine.open(settings, deps) as engine:
        started = loop.time()
        events = [
            e
            async for e in with_outcome(
                engine.stream(TurnRequest("Quraqlıqda suvarmanı necə etməli?", OWNER))
            )
        ]
        took = loop.time() - started
        errors = [e for e in events if isinstance(e, ErrorEvent)]
        assert [e.code for e in errors] == ["run_timeout"]
        assert 0.9 < took < 3, took  # at the deadline, not when the answer would end (~7 s)
        assert answer_of(events), "the pieces sent before the deadline reached the farmer"
        again = [e async for e in with_outcome(engine.stream(TurnRequest("Salam", OWNER)))]
        assert "thread_busy" not in {e.code for e in again if isinstance(e, ErrorEvent)}
        assert answer_of(again)


@pytest.mark.timeout(30)
async def test_invoke_answers_504_run_timeout_over_http(
    fake_llm: tuple[FakeLLM, str], tmp_path: Path
) -> None:
    llm, url = fake_llm
    llm.script = ["hang"]
    llm.hang_seconds = 8
    settings = openai_settings(tmp_path, url, llm_timeout=60, run_timeout=1.0)
    app = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://alim.test", headers={"X-API-Key": DEV_API_KEY}
        ) as client:
            body = {"message": "Quraqlıqda suvarmanı necə etməli?", "user_id": "farmer-1"}
            response = await client.post("/api/v1/graph/invoke", json=body, timeout=20)
    assert response.status_code == 504, response.text
    assert response.json()["code"] == "run_timeout"
