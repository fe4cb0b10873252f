"""The HTTP API as partners see it: `alim serve` in a real process, real HTTP and SSE on 127.0.0.1.

Servers run the offline model over the small fixture knowledge base (see `server.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from alim.settings import DEV_API_KEY
from tests.integration.server import running_server

pytestmark = pytest.mark.slow

HEADERS = {"X-API-Key": DEV_API_KEY}
DROUGHT_QUESTION = "Quraqlıq zamanı pomidoru necə suvarım?"  # a long, multi-line answer
SHORT_QUESTION = "Salam, əkinçiliklə bağlı sualım var."
BUSY_WAIT = 10.0

# The partner guide's example client, verbatim (trailing spaces trimmed); API_URL is replaced.
SEED_CLIENT = """\
import requests
import json

API_URL = "http://localhost:8000/api/v1"
API_KEY = "dev-api-key-change-in-production"  # pragma: allowlist secret

headers = {
    "X-API-Key": API_KEY,
    "Content-Type": "application/json"
}

# Streaming Example
def chat_stream(message):
    data = {"message": message, "user_id": "test_user"}

    with requests.post(f"{API_URL}/graph/stream", json=data, headers=headers, stream=True) as r:
        if r.status_code != 200:
            print("Error:", r.text)
            return

        for line in r.iter_lines():
            if line:
                decoded = line.decode('utf-8')
                if decoded.startswith("event: token"):
                    # Next line is data: ...
                    continue
                if decoded.startswith("data: "):
                    content = decoded.replace("data: ", "")
                    if content == "[DONE]":
                        break
                    print(content, end="", flush=True)

chat_stream("Salam, əkinçiliklə bağlı sualım var.")
"""
# Openings of the offline answers the seed's question can get (needs-question or small talk).
SEED_ANSWER_PHRASES = ("Buyurun, sualınızı yazın.", "Salam! Mən ALİM-əm")


# ---------------------------------------------------------------------------------- helpers
def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=HEADERS, timeout=30.0, trust_env=False)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def body(message: str, user_id: str, thread_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message, "user_id": user_id}
    if thread_id is not None:
        payload["thread_id"] = thread_id
    return payload


def invoke(c: httpx.Client, message: str, user_id: str, thread_id: str | None) -> httpx.Response:
    return c.post("/api/v1/graph/invoke", json=body(message, user_id, thread_id))


def stream_events(
    c: httpx.Client, message: str, user_id: str, thread_id: str | None = None
) -> list[ServerSentEvent]:
    """One whole stream, as parsed SSE events (heartbeat comments are not events)."""
    with connect_sse(
        c, "POST", "/api/v1/graph/stream", json=body(message, user_id, thread_id)
    ) as source:
        assert source.response.status_code == 200, source.response.read()
        return list(source.iter_sse())


def history(c: httpx.Client, thread_id: str, user_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/api/v1/threads/{thread_id}", params={"user_id": user_id})
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


def invoke_when_free(
    c: httpx.Client, message: str, user_id: str, thread_id: str
) -> tuple[httpx.Response, int]:
    """Invoke, retrying while the thread is busy (409 thread_busy), for up to BUSY_WAIT s."""
    deadline = time.monotonic() + BUSY_WAIT
    busy = 0
    while True:
        r = invoke(c, message, user_id, thread_id)
        if r.status_code != 409 or time.monotonic() > deadline:
            return r, busy
        assert r.json()["code"] == "thread_busy", r.text
        busy += 1
        time.sleep(0.2)


def answer_of(events: list[ServerSentEvent]) -> str:
    return "".join(e.data for e in events if e.event == "token")


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One SQLite-backed server shared by the read-mostly tests of this module."""
    with running_server(tmp_path_factory.mktemp("server")) as base_url:
        yield base_url


# ---------------------------------------------------------------------------------- tests
@pytest.mark.timeout(180)
def test_seed_example_client_prints_the_answer(server: str, tmp_path: Path) -> None:
    script = tmp_path / "partner_client.py"
    code = SEED_CLIENT.replace("http://localhost:8000/api/v1", f"{server}/api/v1")
    assert code != SEED_CLIENT
    script.write_text(code, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUTF8": "1", "NO_PROXY": "127.0.0.1"},
    )

    out = done.stdout.decode("utf-8")
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    assert not out.startswith("Error:"), out
    assert any(phrase in out for phrase in SEED_ANSWER_PHRASES), out


@pytest.mark.timeout(180)
def test_stream_events_in_order_and_answer_matches_history(server: str) -> None:
    user = new_id("user")
    with client(server) as c:
        events = stream_events(c, DROUGHT_QUESTION, user)
        kinds = [e.event for e in events]

        # metadata, node…, token…, sources, done — and nothing else, in that order.
        assert kinds[0] == "metadata"
        assert kinds[-2:] == ["sources", "done"]
        middle = kinds[1:-2]
        first_token = middle.index("token")
        assert first_token >= 1
        assert set(middle[:first_token]) == {"node"}
        assert set(middle[first_token:]) == {"token"}
        assert events[-1].data == "[DONE]"
        nodes = [e.data for e in events if e.event == "node"]
        assert nodes[0] == "route"
        assert "generate" in nodes

        meta = json.loads(events[0].data)
        thread_id = meta["thread_id"]
        assert meta["run_id"]
        summary = json.loads(events[-2].data)
        assert summary["route"] == "agronomy"
        assert summary["sources"]

        answer = answer_of(events)
        assert "\n\n" in answer  # the multi-line case: newlines cross SSE `data:` lines
        assert any("\n" in e.data for e in events if e.event == "token")

        messages = history(c, thread_id, user)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == DROUGHT_QUESTION
    assert messages[1]["content"] == answer
    assert [s["id"] for s in messages[1]["sources"]] == [s["id"] for s in summary["sources"]]


@pytest.mark.timeout(180)
def test_disconnect_mid_stream_releases_thread_without_half_answer(tmp_path: Path) -> None:
    user, thread = new_id("user"), new_id("thread")
    interrupted = "Quraqlıqda bağı necə suvarım? Malç lazımdır?"
    with running_server(tmp_path, ALIM_OFFLINE_DELAY="0.05") as base_url, client(base_url) as c:
        first = invoke(c, DROUGHT_QUESTION, user, thread)
        assert first.status_code == 200, first.text

        # Read the metadata and two tokens, then hang up.
        seen: list[ServerSentEvent] = []
        with (
            client(base_url) as streamer,
            connect_sse(
                streamer, "POST", "/api/v1/graph/stream", json=body(interrupted, user, thread)
            ) as source,
        ):
            assert source.response.status_code == 200
            for event in source.iter_sse():
                if event.event in ("metadata", "token"):
                    seen.append(event)
                if sum(e.event == "token" for e in seen) == 2:
                    break
        assert [e.event for e in seen] == ["metadata", "token", "token"]
        assert json.loads(seen[0].data)["thread_id"] == thread
        partial = answer_of(seen)

        third, _ = invoke_when_free(c, SHORT_QUESTION, user, thread)
        assert third.status_code == 200, third.text
        messages = history(c, thread, user)

    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert users.count(interrupted) == 1, messages
    assert users[0] == DROUGHT_QUESTION and users[-1] == SHORT_QUESTION
    # Two completed turns, two whole answers; nothing of the interrupted one.
    assert answers == [first.json()["response"], third.json()["response"]]
    assert all(a != partial and not partial.startswith(a) for a in answers)
    assert messages[-1]["role"] == "assistant"


@pytest.mark.timeout(180)
def test_thread_memory_survives_a_restart(tmp_path: Path) -> None:
    user, thread = new_id("user"), new_id("thread")
    with running_server(tmp_path) as base_url, client(base_url) as c:
        r = invoke(c, DROUGHT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
    with running_server(tmp_path) as base_url, client(base_url) as c:
        assert [m["role"] for m in history(c, thread, user)] == ["user", "assistant"]
        r = invoke(c, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        messages = history(c, thread, user)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [messages[0]["content"], messages[2]["content"]] == [DROUGHT_QUESTION, SHORT_QUESTION]


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_two_servers_share_threads_and_locks_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    env = {
        "ALIM_CHECKPOINTER": "postgres",
        "ALIM_POSTGRES_URL": postgres_url,
        "ALIM_POSTGRES_POOL_SIZE": "5",
        "ALIM_OFFLINE_DELAY": "0.05",
    }
    user, thread = new_id("user"), new_id("thread")
    with (
        running_server(tmp_path / "a", **env) as url_a,
        running_server(tmp_path / "b", **env) as url_b,
        client(url_a) as a,
        client(url_b) as b,
    ):
        # A thread started on A continues on B.
        r = invoke(a, DROUGHT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        r = invoke(b, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        for c in (a, b):
            messages = history(c, thread, user)
            assert [m["role"] for m in messages] == ["user", "assistant"] * 2
            assert [m["content"] for m in messages[::2]] == [DROUGHT_QUESTION, SHORT_QUESTION]

        # A stream on A holds the thread: B refuses a run on it, until the stream is done.
        with connect_sse(
            a, "POST", "/api/v1/graph/stream", json=body(DROUGHT_QUESTION, user, thread)
        ) as source:
            assert source.response.status_code == 200
            events = source.iter_sse()
            assert next(events).event == "metadata"
            busy = invoke(b, SHORT_QUESTION, user, thread)
            assert busy.status_code == 409, busy.text
            assert busy.json()["code"] == "thread_busy"
            rest = list(events)
        assert [e.event for e in rest][-2:] == ["sources", "done"]

        r = invoke(b, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        messages = history(b, thread, user)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert messages[5]["content"] == answer_of(rest)


@pytest.mark.timeout(180)
def test_ready_reports_checkpointer_and_index(server: str) -> None:
    r = httpx.get(f"{server}/ready", timeout=10.0, trust_env=False)
    assert r.status_code == 200, r.text
    ready = r.json()
    assert ready["status"] == "ready"
    assert ready["checks"]["checkpointer"] == "ok"
    assert ready["checks"]["index"].startswith("ok")
    assert ready["checks"]["model"] == "offline"
