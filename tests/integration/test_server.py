"""The HTTP API as partners see it: `alim serve` in a real process, real HTTP and SSE on 127.0.0.1.

Servers run the offline model over the small fixture knowledge base (see
`tests/support/alim_serve.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from httpx_sse import ServerSentEvent

from tests.support import live
from tests.support.alim_serve import postgres_env, running_server
from tests.support.live import DROUGHT_QUESTION, SHORT_QUESTION

pytestmark = pytest.mark.slow

CLIENT_TIMEOUT = 30.0
BUSY_WAIT = 10.0  # for a thread to be free again after a client hung up

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
    user = live.new_id("user")
    with live.client(server, CLIENT_TIMEOUT) as c:
        events = live.stream_events(c, DROUGHT_QUESTION, user)
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

        answer = live.answer_of(events)
        assert "\n\n" in answer  # the multi-line case: newlines cross SSE `data:` lines
        assert any("\n" in e.data for e in events if e.event == "token")

        messages = live.history(c, thread_id, user)
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert messages[0]["content"] == DROUGHT_QUESTION
    assert messages[1]["content"] == answer
    assert [s["id"] for s in messages[1]["sources"]] == [s["id"] for s in summary["sources"]]


@pytest.mark.timeout(180)
def test_a_cancelling_stream_dropped_mid_answer_releases_thread_without_half_answer(
    tmp_path: Path,
) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    interrupted = "Quraqlıqda bağı necə suvarım? Malç lazımdır?"
    with (
        running_server(tmp_path, ALIM_OFFLINE_DELAY="0.05") as base_url,
        live.client(base_url, CLIENT_TIMEOUT) as c,
    ):
        first = live.invoke(c, DROUGHT_QUESTION, user, thread)
        assert first.status_code == 200, first.text

        # Read the metadata and two tokens, then hang up.
        seen: list[ServerSentEvent] = []
        with (
            live.client(base_url, CLIENT_TIMEOUT) as streamer,
            live.open_stream(streamer, interrupted, user, thread, on_disconnect="cancel") as source,
        ):
            assert source.response.status_code == 200
            for event in source.iter_sse():
                if event.event in ("metadata", "token"):
                    seen.append(event)
                if sum(e.event == "token" for e in seen) == 2:
                    break
        assert [e.event for e in seen] == ["metadata", "token", "token"]
        assert json.loads(seen[0].data)["thread_id"] == thread
        partial = live.answer_of(seen)

        third, _ = live.invoke_when_free(c, SHORT_QUESTION, user, thread, BUSY_WAIT, pause=0.2)
        assert third.status_code == 200, third.text
        messages = live.history(c, thread, user)

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
    user, thread = live.new_id("user"), live.new_id("thread")
    with running_server(tmp_path) as base_url, live.client(base_url, CLIENT_TIMEOUT) as c:
        r = live.invoke(c, DROUGHT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
    with running_server(tmp_path) as base_url, live.client(base_url, CLIENT_TIMEOUT) as c:
        assert [m["role"] for m in live.history(c, thread, user)] == ["user", "assistant"]
        r = live.invoke(c, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        messages = live.history(c, thread, user)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [messages[0]["content"], messages[2]["content"]] == [DROUGHT_QUESTION, SHORT_QUESTION]


@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_two_servers_share_threads_and_locks_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    env = {**postgres_env(postgres_url), "ALIM_OFFLINE_DELAY": "0.05"}
    user, thread = live.new_id("user"), live.new_id("thread")
    with (
        running_server(tmp_path / "a", **env) as url_a,
        running_server(tmp_path / "b", **env) as url_b,
        live.client(url_a, CLIENT_TIMEOUT) as a,
        live.client(url_b, CLIENT_TIMEOUT) as b,
    ):
        # A thread started on A continues on B.
        r = live.invoke(a, DROUGHT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        r = live.invoke(b, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        for c in (a, b):
            messages = live.history(c, thread, user)
            assert [m["role"] for m in messages] == ["user", "assistant"] * 2
            assert [m["content"] for m in messages[::2]] == [DROUGHT_QUESTION, SHORT_QUESTION]

        # A stream on A holds the thread: B refuses a run on it, until the stream is done.
        with live.open_stream(a, DROUGHT_QUESTION, user, thread) as source:
            assert source.response.status_code == 200
            events = source.iter_sse()
            assert next(events).event == "metadata"
            busy = live.invoke(b, SHORT_QUESTION, user, thread)
            assert busy.status_code == 409, busy.text
            assert busy.json()["code"] == "thread_busy"
            rest = list(events)
        assert [e.event for e in rest][-2:] == ["sources", "done"]

        r = live.invoke(b, SHORT_QUESTION, user, thread)
        assert r.status_code == 200, r.text
        messages = live.history(b, thread, user)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4
    assert messages[5]["content"] == live.answer_of(rest)


@pytest.mark.timeout(180)
def test_ready_reports_checkpointer_and_index(server: str) -> None:
    r = httpx.get(f"{server}/ready", timeout=10.0, trust_env=False)
    assert r.status_code == 200, r.text
    ready = r.json()
    assert ready["status"] == "ready"
    assert ready["checks"]["checkpointer"] == "ok"
    assert ready["checks"]["index"].startswith("ok")
    assert ready["checks"]["model"] == "offline"
