"""`POST /api/v1/graph/stream`: the SSE event sequence as a partner's SSE client parses it, the
exact framing of multi-line chunks (api/sse.py, unit-tested too), and a run that really fails."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from httpx_sse._decoders import SSEDecoder, SSELineDecoder

from alim.events import (
    DoneEvent,
    ErrorEvent,
    MetadataEvent,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
)
from alim.offline import OFFLINE_MODEL_NAME
from alim.settings import Settings
from api.sse import to_sse
from tests.api.helpers import (
    INVOKE,
    SOURCE_KEYS,
    STREAM,
    api_client,
    assert_error,
    history,
    new_user,
    running_app,
    thread_list,
)

SEED_MESSAGE = "Fermada susuzluq var, nə edim?"
FROST = "How do I protect wheat from frost?"
HUMAN = "I want to talk to an agronomist"
UNREACHABLE_LLM = {
    "llm_provider": "openai",
    "openai_base_url": "http://127.0.0.1:9/v1",
    "openai_api_key": "x",
    "llm_max_retries": 0,
    "llm_timeout": 1,
}


@dataclass
class Stream:
    status: int
    headers: httpx.Headers
    events: list[tuple[str, str]]

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def data(self, name: str) -> list[str]:
        return [data for n, data in self.events if n == name]

    def one(self, name: str) -> Any:
        (data,) = self.data(name)
        return json.loads(data)

    @property
    def text(self) -> str:
        return "".join(self.data("token"))


async def stream(client: httpx.AsyncClient, body: dict[str, Any]) -> Stream:
    """The whole stream, parsed by httpx-sse (a spec-following SSE client)."""
    async with aconnect_sse(client, "POST", STREAM, json=body) as source:
        assert source.response.status_code == 200
        events = [(sse.event, sse.data) async for sse in source.aiter_sse()]
        return Stream(source.response.status_code, source.response.headers, events)


def decode(raw: bytes) -> list[tuple[str, str]]:
    """Bytes on the wire → (event, data) pairs, with httpx-sse's spec decoder."""
    lines = SSELineDecoder()
    decoder = SSEDecoder()
    out = []
    for line in [*lines.decode(raw.decode("utf-8")), *lines.flush()]:
        sse = decoder.decode(line)
        if sse is not None:
            out.append((sse.event, sse.data))
    return out


# ------------------------------------------------------------------ api/sse.py, without HTTP


@pytest.mark.parametrize(
    "text",
    [
        "line1\n\n  indented",
        "\n\n",
        "ends with blank lines\n\n",
        "\nstarts on a new line",
        "  two leading spaces",
        "data: looks like a field\nevent: done",
        ": looks like a comment",
        "Torpağın üstünü malçla örtün — nəmliyi qoruyur. Пшеница ✓",
    ],
)
def test_token_round_trips_through_a_spec_parser(text: str) -> None:
    raw = to_sse(TokenEvent(text)).encode()

    assert decode(raw) == [("token", text)]


def test_multi_line_token_is_framed_as_several_data_lines() -> None:
    raw = to_sse(TokenEvent("line1\n\n  indented")).encode().decode("utf-8")

    lines = raw.replace("\r\n", "\n").split("\n")
    assert lines[0] == "event: token"
    assert lines[1:4] == ["data: line1", "data: ", "data:   indented"]
    assert lines[4:] == ["", ""], "one blank line ends the event"


def test_each_engine_event_has_its_sse_form() -> None:
    sources = SourcesEvent(
        sources=[{"id": "drought.az", "title": "Quraqlıqda suvarma", "score": 0.5}],
        confidence=0.7,
        escalated=False,
        escalation_reason=None,
        route="agronomy",
        model=OFFLINE_MODEL_NAME,
    )
    events = [
        MetadataEvent("t-1", "r-1"),
        NodeEvent("retrieve"),
        sources,
        ErrorEvent("provider_unavailable", "every model failed"),
        DoneEvent(),
    ]

    decoded = [decode(to_sse(event).encode())[0] for event in events]

    assert [name for name, _ in decoded] == ["metadata", "node", "sources", "error", "done"]
    assert json.loads(decoded[0][1]) == {"thread_id": "t-1", "run_id": "r-1"}
    assert decoded[1][1] == "retrieve"
    assert json.loads(decoded[2][1]) == asdict(sources)
    assert json.loads(decoded[2][1])["sources"] == [
        {"id": "drought.az", "title": "Quraqlıqda suvarma", "score": 0.5}
    ]
    assert "Quraqlıqda" in decoded[2][1], "non-ASCII text is sent as is"
    assert json.loads(decoded[3][1]) == {
        "code": "provider_unavailable",
        "detail": "every model failed",
    }
    assert decoded[4][1] == "[DONE]"


def test_to_sse_rejects_what_is_not_an_engine_event() -> None:
    with pytest.raises(TypeError):
        to_sse("token")  # type: ignore[arg-type]


# ------------------------------------------------------------------ over HTTP


async def test_event_order_of_an_answered_question(client: httpx.AsyncClient) -> None:
    user = new_user()
    result = await stream(client, {"message": SEED_MESSAGE, "user_id": user})

    assert result.headers["content-type"].startswith("text/event-stream")
    assert result.headers["x-request-id"]
    names = result.names
    assert names[0] == "metadata"
    assert names[-1] == "done" and result.data("done") == ["[DONE]"]
    assert names[-2] == "sources"
    assert result.data("node") == ["route", "retrieve", "assess", "generate"]
    assert "error" not in names
    # node… then token… : every token comes after the generate node and before sources.
    generate_at = result.events.index(("node", "generate"))
    token_at = [i for i, name in enumerate(names) if name == "token"]
    assert token_at, "the answer arrives as tokens"
    assert min(token_at) > generate_at
    assert max(token_at) < names.index("sources")
    assert token_at == list(range(min(token_at), max(token_at) + 1)), "tokens are contiguous"
    assert names[: generate_at + 1] == ["metadata", "node", "node", "node", "node"]


async def test_metadata_names_the_thread_and_the_run(client: httpx.AsyncClient) -> None:
    user = new_user()
    fresh = await stream(client, {"message": FROST, "user_id": user})
    named = await stream(client, {"message": FROST, "user_id": user, "thread_id": "my-thread.1"})

    meta = fresh.one("metadata")
    assert set(meta) == {"thread_id", "run_id"}
    assert uuid.UUID(meta["thread_id"]).version == 4
    uuid.UUID(meta["run_id"])
    assert named.one("metadata")["thread_id"] == "my-thread.1"
    assert named.one("metadata")["run_id"] != meta["run_id"]
    listed = {t["thread_id"] for t in await thread_list(client, user)}
    assert listed == {meta["thread_id"], "my-thread.1"}


@pytest.mark.parametrize("message", [SEED_MESSAGE, FROST])
async def test_tokens_reassemble_the_stored_answer_exactly(
    client: httpx.AsyncClient, message: str
) -> None:
    user = new_user()
    result = await stream(client, {"message": message, "user_id": user})
    thread_id = result.one("metadata")["thread_id"]

    messages = await history(client, thread_id, user)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert result.text == messages[1]["content"]
    assert result.text.strip()


async def test_blank_lines_inside_chunks_survive_the_stream(client: httpx.AsyncClient) -> None:
    """The offline answers contain paragraph breaks: a chunk "…:\\n\\n" must arrive as sent."""
    user = new_user()
    result = await stream(client, {"message": SEED_MESSAGE, "user_id": user})
    stored = (await history(client, result.one("metadata")["thread_id"], user))[1]["content"]

    assert "\n\n" in stored
    assert any("\n" in chunk for chunk in result.data("token"))
    assert result.text == stored
    assert result.text.count("\n") == stored.count("\n")


async def test_sources_event_summarises_the_turn(client: httpx.AsyncClient) -> None:
    user = new_user()
    result = await stream(client, {"message": SEED_MESSAGE, "user_id": user})

    summary = result.one("sources")
    assert {
        "sources",
        "confidence",
        "escalated",
        "escalation_reason",
        "route",
        "model",
    } <= set(summary)
    assert summary["route"] == "agronomy"
    assert summary["model"] == OFFLINE_MODEL_NAME
    assert summary["escalated"] is False
    assert summary["sources"] and all(set(s) == SOURCE_KEYS for s in summary["sources"])
    stored = await history(client, result.one("metadata")["thread_id"], user)
    assert stored[1]["sources"] == summary["sources"]


async def test_escalation_streams_the_hand_off(client: httpx.AsyncClient) -> None:
    user = new_user()
    result = await stream(client, {"message": HUMAN, "user_id": user})

    assert result.data("node")[:2] == ["route", "escalate"]
    assert "generate" not in result.data("node")
    assert result.names[-2:] == ["sources", "done"]
    summary = result.one("sources")
    assert summary["escalated"] is True
    assert summary["escalation_reason"] == "user_requested"
    escalate_at = result.events.index(("node", "escalate"))
    token_at = [i for i, name in enumerate(result.names) if name == "token"]
    assert token_at and min(token_at) > escalate_at
    assert max(token_at) < result.names.index("sources")


async def test_stream_and_invoke_give_the_same_answer(client: httpx.AsyncClient) -> None:
    user = new_user()
    streamed = await stream(client, {"message": FROST, "user_id": user})
    invoked = await client.post(INVOKE, json={"message": FROST, "user_id": user})

    body = invoked.json()
    summary = streamed.one("sources")
    assert streamed.text == body["response"]
    assert summary["sources"] == body["sources"]
    assert summary["model"] == body["model"]
    assert summary["route"] == body["route"]


async def test_errors_before_the_stream_are_json(client: httpx.AsyncClient) -> None:
    user = new_user()
    unauthorized = await client.post(
        STREAM, json={"message": FROST, "user_id": user}, headers={"X-API-Key": "wrong"}
    )
    invalid = await client.post(STREAM, json={"message": " ", "user_id": user})

    assert_error(unauthorized, 401, "invalid_api_key")
    assert_error(invalid, 422, "message_empty")
    assert await thread_list(client, user) == []


@pytest.mark.timeout(60)
async def test_failed_run_ends_with_error_then_done(
    api_settings_factory: Callable[..., Settings],
) -> None:
    """A real failure: the only chat model is an OpenAI endpoint where nothing listens."""
    settings = api_settings_factory(**UNREACHABLE_LLM)
    user = new_user()
    async with running_app(settings) as app, api_client(app) as client:
        result = await stream(client, {"message": SEED_MESSAGE, "user_id": user})
        thread_id = result.one("metadata")["thread_id"]
        # The failed run released its thread: the next turn fails the same way, not 409.
        again = await client.post(
            INVOKE, json={"message": SEED_MESSAGE, "user_id": user, "thread_id": thread_id}
        )

    assert result.names[0] == "metadata"
    assert result.names[-2:] == ["error", "done"]
    assert result.data("done") == ["[DONE]"]
    assert "sources" not in result.names
    assert result.data("token") == []
    error = result.one("error")
    assert set(error) == {"code", "detail"}
    assert error["code"] == "provider_unavailable"
    raw = result.data("error")[0]
    assert "Traceback" not in raw and 'File "' not in raw
    assert_error(again, 503, "provider_unavailable")


@pytest.mark.timeout(60)
async def test_failed_invoke_is_a_503_json_error(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory(**UNREACHABLE_LLM)
    user = new_user()
    async with running_app(settings) as app, api_client(app) as client:
        response = await client.post(INVOKE, json={"message": SEED_MESSAGE, "user_id": user})

    body = assert_error(response, 503, "provider_unavailable")
    assert "Traceback" not in body["detail"]
