"""The Python client (alim/client.py) as a partner uses it: `AlimClient` and `AsyncAlimClient`
against a real `alim serve` (offline model, fixture knowledge base, real embedder), plus a small
local stub server for the Retry-After handling that a real server cannot be made to show on cue."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from alim.client import (
    AlimClient,
    ApiError,
    AsyncAlimClient,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    UnavailableError,
)
from alim.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    SourcesEvent,
    TokenEvent,
    TurnResult,
)
from alim.offline import OFFLINE_MODEL_NAME
from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server
from tests.support.live import new_id
from tests.support.servers import serve_in_thread

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DROUGHT_AZ = "Quraqlıq zamanı pomidoru necə suvarım?"
FROST_EN = "How do I protect wheat from frost?"
HUMAN = "I want to talk to an agronomist"
SAFFRON_TITLE = "Zəfəran soğanlarının əkilməsi"
SAFFRON_TEXT = (
    "Zəfəran soğanlarını avqustun sonunda, 10 sm dərinlikdə, yüngül və quru torpağa əkin. "
    "Zəfəran soğanları arasında 10 sm məsafə saxlayın. Zəfəran payızda çiçəkləyir; "
    "çiçəkləri səhər tezdən yığın və dişcikləri kölgədə qurudun."
)
SAFFRON_QUESTION = "Zəfəran soğanlarını nə vaxt və hansı dərinlikdə əkməliyəm?"
PARTNER_KEY = secrets.token_urlsafe(24)
"""Another partner's key (chat and admin): the tests that change assistant settings use it, so
the dev partner's turns in the other tests keep their defaults."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    keys = json.dumps([f"fermerbank:{PARTNER_KEY}:chat+admin"])
    with running_server(tmp_path_factory.mktemp("client"), ALIM_API_KEYS=keys) as base_url:
        yield base_url


@pytest.fixture
def alim(server: str) -> Iterator[AlimClient]:
    with AlimClient(server, DEV_API_KEY, timeout=60) as client:
        yield client


def check_turn(result: TurnResult) -> None:
    assert isinstance(result, TurnResult)
    assert result.response.strip()
    assert str(uuid.UUID(result.thread_id)) == result.thread_id
    uuid.UUID(result.run_id)
    assert result.model == OFFLINE_MODEL_NAME
    assert result.route == "agronomy"
    assert result.escalated is False
    assert result.sources
    assert all(isinstance(s["id"], str) and s["title"] for s in result.sources)


def check_event_order(events: list[Event]) -> None:
    """metadata, node…, token…, sources, done — and nothing else."""
    assert isinstance(events[0], MetadataEvent)
    assert isinstance(events[-2], SourcesEvent)
    assert isinstance(events[-1], DoneEvent)
    middle = events[1:-2]
    first_token = next(i for i, e in enumerate(middle) if isinstance(e, TokenEvent))
    assert first_token >= 1
    assert all(isinstance(e, NodeEvent) for e in middle[:first_token])
    assert all(isinstance(e, TokenEvent) for e in middle[first_token:])
    nodes = [e.name for e in middle if isinstance(e, NodeEvent)]
    assert nodes[0] == "route"
    assert "generate" in nodes
    assert not any(isinstance(e, ErrorEvent) for e in events)


# ---------------------------------------------------------------------------------- sync client
def test_invoke_returns_a_turn_result(alim: AlimClient) -> None:
    user = new_id("user")

    first = alim.invoke(DROUGHT_AZ, user_id=user)
    check_turn(first)
    second = alim.invoke(FROST_EN, user_id=user, thread_id=first.thread_id, language="en")

    check_turn(second)
    assert second.thread_id == first.thread_id
    assert second.run_id != first.run_id
    messages = alim.threads.get(first.thread_id, user)["messages"]
    assert [m["content"] for m in messages] == [
        DROUGHT_AZ,
        first.response,
        FROST_EN,
        second.response,
    ]


def test_stream_yields_typed_events_that_match_the_stored_answer(alim: AlimClient) -> None:
    user = new_id("user")

    events = list(alim.stream(DROUGHT_AZ, user_id=user))

    check_event_order(events)
    meta, summary = events[0], events[-2]
    assert isinstance(meta, MetadataEvent) and isinstance(summary, SourcesEvent)
    answer = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert answer.strip()
    assert summary.route == "agronomy"
    assert summary.model == OFFLINE_MODEL_NAME
    assert summary.sources
    detail = alim.threads.get(meta.thread_id, user)
    assert [m["role"] for m in detail["messages"]] == ["user", "assistant"]
    assert detail["messages"][1]["content"] == answer
    assert [s["id"] for s in detail["messages"][1]["sources"]] == [s["id"] for s in summary.sources]


def test_threads_list_get_delete(alim: AlimClient) -> None:
    user = new_id("user")
    kept = alim.invoke(DROUGHT_AZ, user_id=user)
    dropped = alim.invoke(FROST_EN, user_id=user)

    listed = alim.threads.list(user)
    assert {t["thread_id"] for t in listed} == {kept.thread_id, dropped.thread_id}
    assert len(alim.threads.list(user, limit=1)) == 1
    assert alim.threads.get(dropped.thread_id, user)["messages"][0]["content"] == FROST_EN

    assert alim.threads.delete(dropped.thread_id, user) is None

    assert [t["thread_id"] for t in alim.threads.list(user)] == [kept.thread_id]
    with pytest.raises(NotFoundError) as caught:
        alim.threads.get(dropped.thread_id, user)
    assert caught.value.code == "thread_not_found"
    # Another user does not see the thread either.
    with pytest.raises(NotFoundError):
        alim.threads.get(kept.thread_id, new_id("stranger"))


def test_errors_are_typed_with_code_and_request_id(server: str, alim: AlimClient) -> None:
    with AlimClient(server, "not-a-key") as stranger:
        with pytest.raises(AuthenticationError) as bad_key:
            stranger.invoke(DROUGHT_AZ, user_id="u")
        with pytest.raises(AuthenticationError):
            list(stranger.stream(DROUGHT_AZ, user_id="u"))
    assert bad_key.value.status == 401
    assert bad_key.value.code == "invalid_api_key"
    assert bad_key.value.request_id
    assert isinstance(bad_key.value, ApiError)

    with pytest.raises(NotFoundError) as missing:
        alim.threads.get(new_id("thread"), new_id("user"))
    assert (missing.value.status, missing.value.code) == (404, "thread_not_found")
    assert missing.value.request_id
    assert missing.value.request_id != bad_key.value.request_id

    with pytest.raises(InvalidRequestError) as empty:
        alim.invoke("", user_id=new_id("user"))
    assert (empty.value.status, empty.value.code) == (422, "message_empty")
    assert empty.value.detail
    with pytest.raises(InvalidRequestError) as empty_stream:
        list(alim.stream("", user_id=new_id("user")))
    assert empty_stream.value.code == "message_empty"


def test_escalations_list_and_reply(alim: AlimClient) -> None:
    user = new_id("user")
    asked = alim.invoke(HUMAN, user_id=user)
    assert asked.escalated is True
    assert asked.escalation_reason == "user_requested"
    assert asked.escalation_id

    open_ids = [e["id"] for e in alim.escalations.list()]
    assert asked.escalation_id in open_ids
    escalation = next(e for e in alim.escalations.list() if e["id"] == asked.escalation_id)
    assert (escalation["thread_id"], escalation["user_id"]) == (asked.thread_id, user)
    assert escalation["question"] == HUMAN

    answer = "Damcı suvarmanı axşam aparın və torpağı malçlayın."
    replied = alim.escalations.reply(asked.escalation_id, answer, agent_id="agronomist-7")

    assert replied["status"] == "resolved"
    assert replied["answer"] == answer
    assert replied["agent_id"] == "agronomist-7"
    assert asked.escalation_id not in [e["id"] for e in alim.escalations.list()]
    assert asked.escalation_id in [e["id"] for e in alim.escalations.list(status="resolved")]
    assert asked.escalation_id in [e["id"] for e in alim.escalations.list(status=None)]
    messages = alim.threads.get(asked.thread_id, user)["messages"]
    assert messages[-1]["role"] == "assistant"
    assert messages[-1]["content"] == answer
    with pytest.raises(ConflictError) as twice:
        alim.escalations.reply(asked.escalation_id, answer, agent_id="agronomist-7")
    assert twice.value.code == "escalation_resolved"


def test_knowledge_add_list_get_delete(alim: AlimClient) -> None:
    added = alim.knowledge.add(SAFFRON_TITLE, SAFFRON_TEXT, "az", tags=["zəfəran"], topic="crops")

    assert added["source"] == "ingested"
    assert added["title"] == SAFFRON_TITLE
    page = alim.knowledge.list(limit=200)
    assert added["id"] in [a["id"] for a in page["articles"]]
    assert page["total"] == len(page["articles"])
    assert alim.knowledge.get(added["id"])["content"] == SAFFRON_TEXT
    answer = alim.invoke(SAFFRON_QUESTION, user_id=new_id("user"))
    assert answer.sources[0]["id"] == added["id"]

    assert alim.knowledge.delete(added["id"]) is None

    with pytest.raises(NotFoundError) as gone:
        alim.knowledge.get(added["id"])
    assert gone.value.code == "article_not_found"
    answer = alim.invoke(SAFFRON_QUESTION, user_id=new_id("user"))
    assert added["id"] not in [s["id"] for s in answer.sources]
    with pytest.raises(ConflictError) as bundled:
        alim.knowledge.delete("frost.en")
    assert bundled.value.code == "bundled_article"


def test_knowledge_upload_of_a_markdown_file(alim: AlimClient, tmp_path: Path) -> None:
    path = tmp_path / "kivi.md"
    path.write_text(
        "# Kivi tinglərinin budanması\n\n"
        "Kivi tinglərini qışda, tumurcuqlar oyanmamış budayın. Kivi tənəyində hər qolda "
        "dörd-beş göz saxlayın, qalan kivi zoğlarını kəsin.\n",
        encoding="utf-8",
    )

    uploaded = alim.knowledge.upload(path)

    assert uploaded["title"] == "Kivi tinglərinin budanması"
    assert uploaded["language"] == "az"
    assert "budayın" in alim.knowledge.get(uploaded["id"])["content"]
    answer = alim.invoke("Kivi tinglərini nə vaxt budamaq lazımdır?", user_id=new_id("user"))
    assert answer.sources[0]["id"] == uploaded["id"]

    titled = alim.knowledge.upload(path, title="Kivi budaması", language="az")
    assert titled["title"] == "Kivi budaması"
    with pytest.raises(InvalidRequestError) as refused:
        alim.knowledge.upload(_write(tmp_path / "notes.xlsx", "x"))  # DOCX is read since issue 13
    assert (refused.value.status, refused.value.code) == (415, "unsupported_document")


def test_the_assistants_default_datasets_choose_what_a_chat_searches(
    server: str, alim: AlimClient
) -> None:
    """`assistant.replace(dataset_ids=…, include_bundled=False)`: a chat that names no dataset
    searches the partner's dataset only, until the partner says otherwise."""
    user = new_id("user")
    with AlimClient(server, PARTNER_KEY, timeout=60) as partner:
        assert partner.assistant.get()["dataset_ids"] is None  # all of the partner's
        dataset = partner.datasets.create("Zəfəran", language="az")
        article = partner.knowledge.add(SAFFRON_TITLE, SAFFRON_TEXT, "az", dataset_id=dataset["id"])
        cited = partner.invoke(DROUGHT_AZ, user_id=user).sources
        assert "bundled" in {s["dataset_id"] for s in cited}

        saved = partner.assistant.replace(
            display_name="Fermer Bank", dataset_ids=[dataset["id"]], include_bundled=False
        )

        assert saved["dataset_ids"] == [dataset["id"]] and saved["include_bundled"] is False
        assert saved["updated_at"] and partner.assistant.get() == saved
        answer = partner.invoke(SAFFRON_QUESTION, user_id=user)
        assert answer.sources[0]["id"] == article["id"]
        events = list(partner.stream(DROUGHT_AZ, user_id=user))
        (summary,) = [e for e in events if isinstance(e, SourcesEvent)]
        assert {s["dataset_id"] for s in summary.sources} <= {dataset["id"]}
        asked = partner.invoke(DROUGHT_AZ, user_id=user, include_bundled=True)  # the request wins
        assert "bundled" in {s["dataset_id"] for s in asked.sources}
        # The dev partner keeps its defaults and cannot make the other partner's dataset one.
        assert "bundled" in {s["dataset_id"] for s in alim.invoke(DROUGHT_AZ, user_id=user).sources}
        with pytest.raises(NotFoundError) as theirs:
            alim.assistant.replace(dataset_ids=[dataset["id"]])
        assert theirs.value.code == "dataset_not_found"
        assert alim.assistant.get()["dataset_ids"] is None

        reset = partner.assistant.replace()  # what is left out goes back to its default

        assert (reset["display_name"], reset["dataset_ids"], reset["include_bundled"]) == (
            "ALİM",
            None,
            True,
        )
        cited = partner.invoke(DROUGHT_AZ, user_id=user).sources
        assert "bundled" in {s["dataset_id"] for s in cited}
        partner.datasets.delete(dataset["id"])


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------- async client
async def test_async_client_invoke_stream_threads_and_errors(server: str) -> None:
    user = new_id("user")
    async with AsyncAlimClient(server, DEV_API_KEY, timeout=60) as alim:
        result = await alim.invoke(DROUGHT_AZ, user_id=user)
        check_turn(result)

        events = [e async for e in alim.stream(FROST_EN, user_id=user, thread_id=result.thread_id)]
        check_event_order(events)
        answer = "".join(e.text for e in events if isinstance(e, TokenEvent))

        threads = await alim.threads.list(user)
        assert [t["thread_id"] for t in threads] == [result.thread_id]
        messages = (await alim.threads.get(result.thread_id, user))["messages"]
        assert [m["content"] for m in messages] == [DROUGHT_AZ, result.response, FROST_EN, answer]

        with pytest.raises(InvalidRequestError) as empty:
            await alim.invoke("  ", user_id=user)
        assert empty.value.code == "message_empty"

        assert await alim.threads.delete(result.thread_id, user) is None
        with pytest.raises(NotFoundError) as gone:
            await alim.threads.get(result.thread_id, user)
        assert gone.value.code == "thread_not_found"
        assert gone.value.request_id

    async with AsyncAlimClient(server, "not-a-key") as stranger:
        with pytest.raises(AuthenticationError) as bad_key:
            await stranger.invoke(DROUGHT_AZ, user_id=user)
        assert bad_key.value.code == "invalid_api_key"
        assert bad_key.value.request_id
        with pytest.raises(AuthenticationError):
            [e async for e in stranger.stream(DROUGHT_AZ, user_id=user)]


async def test_async_client_escalations_and_knowledge(server: str, tmp_path: Path) -> None:
    async with AsyncAlimClient(server, DEV_API_KEY, timeout=60) as alim:
        asked = await alim.invoke(HUMAN, user_id=new_id("user"))
        assert asked.escalation_id is not None
        assert asked.escalation_id in [e["id"] for e in await alim.escalations.list()]
        replied = await alim.escalations.reply(asked.escalation_id, "Cavab.", agent_id="a-1")
        assert replied["status"] == "resolved"

        added = await alim.knowledge.add(SAFFRON_TITLE, SAFFRON_TEXT, "az")
        assert (await alim.knowledge.get(added["id"]))["content"] == SAFFRON_TEXT
        listed = await alim.knowledge.list(limit=200)
        assert added["id"] in [a["id"] for a in listed["articles"]]
        # Other content than the added article's: identical content is not stored twice.
        uploaded = await alim.knowledge.upload(
            _write(
                tmp_path / "saffron.txt",
                f"{SAFFRON_TITLE}\n\n{SAFFRON_TEXT}\nKeep the corms dry in summer.\n",
            )
        )
        assert uploaded["title"] == SAFFRON_TITLE and uploaded["id"] != added["id"]
        await alim.knowledge.delete(added["id"])
        await alim.knowledge.delete(uploaded["id"])
        with pytest.raises(NotFoundError):
            await alim.knowledge.get(added["id"])


async def test_async_client_assistant_settings(server: str) -> None:
    async with AsyncAlimClient(server, PARTNER_KEY, timeout=60) as partner:
        dataset = await partner.datasets.create("Zəfəran (async)")
        article = await partner.knowledge.add(
            SAFFRON_TITLE, SAFFRON_TEXT, "az", dataset_id=dataset["id"]
        )

        none_of_ours = await partner.assistant.replace(dataset_ids=[], default_language="az")

        assert none_of_ours["dataset_ids"] == [] and none_of_ours["default_language"] == "az"
        assert await partner.assistant.get() == none_of_ours
        answer = await partner.invoke(SAFFRON_QUESTION, user_id=new_id("user"))
        assert article["id"] not in [s["id"] for s in answer.sources]
        with pytest.raises(InvalidRequestError) as unknown:
            await partner.assistant.replace(default_region="Atlantis")
        assert unknown.value.code == "unknown_region"

        await partner.assistant.replace()

        answer = await partner.invoke(SAFFRON_QUESTION, user_id=new_id("user"))
        assert answer.sources[0]["id"] == article["id"]
        await partner.datasets.delete(dataset["id"])


# ---------------------------------------------------------------------------------- rate limits
def test_rate_limited_without_retries_raises_with_retry_after(tmp_path: Path) -> None:
    with (
        running_server(tmp_path, ALIM_RATE_LIMIT_PER_MINUTE="2") as url,
        AlimClient(url, DEV_API_KEY, max_retries=0) as alim,
    ):
        user = new_id("user")
        # Two requests a minute are allowed; a window boundary may allow two more.
        with pytest.raises(RateLimitError) as limited:
            for _ in range(5):
                alim.threads.list(user)

    assert limited.value.status == 429
    assert limited.value.code == "rate_limited"
    assert limited.value.retry_after is not None and limited.value.retry_after > 0
    assert limited.value.request_id


@dataclass
class FlakyServer:
    """Answers `refusals` times with `status` (Retry-After: 0), then like a real ALİM server."""

    refusals: int
    status: int = 429
    requests: list[str] = field(default_factory=list)

    def _refuse(self) -> Response | None:
        if len(self.requests) > self.refusals:
            return None
        code = "rate_limited" if self.status == 429 else "checkpointer_unavailable"
        return JSONResponse(
            {"detail": "try again", "code": code, "request_id": f"r{len(self.requests)}"},
            status_code=self.status,
            headers={"Retry-After": "0", "X-Request-ID": f"r{len(self.requests)}"},
        )

    def app(self) -> Starlette:
        async def invoke(request: Request) -> Response:
            body = await request.json()
            self.requests.append(f"invoke {body['message']}")
            return self._refuse() or JSONResponse(
                {
                    "response": "Suvarmanı səhər aparın.",
                    "thread_id": "t-1",
                    "model": OFFLINE_MODEL_NAME,
                    "run_id": "r-1",
                    "route": "agronomy",
                    "confidence": 0.8,
                    "escalated": False,
                    "escalation_reason": None,
                    "sources": [{"id": "drought.az", "title": "Quraqlıq", "score": 0.5}],
                    "usage": None,
                    "escalation_id": None,
                    "a_field_from_a_newer_server": True,
                }
            )

        async def stream(request: Request) -> Response:
            self.requests.append("stream")
            refused = self._refuse()
            if refused is not None:
                return refused
            summary = {
                "sources": [],
                "confidence": 0.8,
                "escalated": False,
                "escalation_reason": None,
                "route": "agronomy",
                "model": OFFLINE_MODEL_NAME,
                "a_field_from_a_newer_server": 1,
            }
            text = (
                "event: metadata\ndata: "
                + json.dumps({"thread_id": "t-1", "run_id": "r-1"})
                + "\n\nevent: node\ndata: route\n\nevent: token\ndata: Salam\n\n"
                + "event: sources\ndata: "
                + json.dumps(summary)
                + "\n\nevent: done\ndata: [DONE]\n\n"
            )
            return Response(text, media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/api/v1/graph/invoke", invoke, methods=["POST"]),
                Route("/api/v1/graph/stream", stream, methods=["POST"]),
            ]
        )


def test_retries_honour_429_and_then_succeed() -> None:
    stub = FlakyServer(refusals=2)
    with serve_in_thread(stub.app()) as url, AlimClient(url, "k", max_retries=2) as alim:
        result = alim.invoke("Salam", user_id="u")

    assert stub.requests == ["invoke Salam"] * 3
    assert isinstance(result, TurnResult)
    assert result.response == "Suvarmanı səhər aparın."
    assert result.sources[0]["id"] == "drought.az"


def test_retries_give_up_after_max_retries() -> None:
    stub = FlakyServer(refusals=5)
    with serve_in_thread(stub.app()) as url, AlimClient(url, "k", max_retries=1) as alim:
        with pytest.raises(RateLimitError) as limited:
            alim.invoke("Salam", user_id="u")

    assert len(stub.requests) == 2
    assert limited.value.code == "rate_limited"
    assert limited.value.request_id == "r2"


def test_stream_retries_503_then_yields_events() -> None:
    stub = FlakyServer(refusals=1, status=503)
    with serve_in_thread(stub.app()) as url, AlimClient(url, "k", max_retries=2) as alim:
        events = list(alim.stream("Salam", user_id="u"))

    assert stub.requests == ["stream", "stream"]
    assert [type(e) for e in events] == [
        MetadataEvent,
        NodeEvent,
        TokenEvent,
        SourcesEvent,
        DoneEvent,
    ]
    assert events[2] == TokenEvent("Salam")


def test_without_retries_503_is_unavailable() -> None:
    stub = FlakyServer(refusals=1, status=503)
    with serve_in_thread(stub.app()) as url, AlimClient(url, "k", max_retries=0) as alim:
        with pytest.raises(UnavailableError) as down:
            alim.invoke("Salam", user_id="u")

    assert len(stub.requests) == 1
    assert down.value.code == "checkpointer_unavailable"


async def test_async_client_retries_then_succeeds() -> None:
    stub = FlakyServer(refusals=2)
    with serve_in_thread(stub.app()) as url:
        async with AsyncAlimClient(url, "k", max_retries=2) as alim:
            result = await alim.invoke("Salam", user_id="u")
            events = [e async for e in alim.stream("Salam", user_id="u")]

    assert stub.requests == ["invoke Salam"] * 3 + ["stream"]
    assert result.response == "Suvarmanı səhər aparın."
    assert isinstance(events[-1], DoneEvent)


class _CutsFirst(BaseHTTPRequestHandler):
    """Cuts the connection of the first request to each path (no answer at all), then answers
    with the JSON body it was sent."""

    seen: ClassVar[list[tuple[str, str, str | None]]] = []

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append((self.command, self.path, self.headers.get("Idempotency-Key")))
        if sum(1 for s in self.seen if s[:2] == (self.command, self.path)) == 1:
            self.close_connection = True  # the answer is lost: the socket closes unanswered
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body or b"{}")

    do_PUT = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def cutting_server() -> Iterator[str]:
    _CutsFirst.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutsFirst)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_lost_answer_to_put_assistant_is_resent(cutting_server: str) -> None:
    with AlimClient(cutting_server, "k", max_retries=2) as alim:
        settings = alim.assistant.replace(include_bundled=False)
    assert settings == {"include_bundled": False}
    assert [s[:2] for s in _CutsFirst.seen] == [("PUT", "/api/v1/assistant")] * 2


async def test_a_post_the_server_does_not_deduplicate_is_not_resent(cutting_server: str) -> None:
    async with AsyncAlimClient(cutting_server, "k", max_retries=2) as alim:
        with pytest.raises(httpx.TransportError):  # resending could create a second dataset
            await alim.datasets.create("Sahə qeydləri")
    assert [s[:2] for s in _CutsFirst.seen] == [("POST", "/api/v1/datasets")]
