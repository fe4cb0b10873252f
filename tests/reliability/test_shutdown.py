"""SIGTERM while a slow stream is in flight (ALIM_SHUTDOWN_GRACE_SECONDS=5).

Expected: the client's stream either completes (`sources`, `done`) or, when the grace period cuts
it, ends with an `error` event and then `done`; the process exits within grace + 10 s; after a
restart on the same data the thread holds only whole answers and takes a new turn.

Two cases, one scenario each (run once, then checked by several tests): the fixture knowledge
base's answer to INTERRUPTED is ~26 chunks, so at 0.05 s per chunk the rest of the stream fits in
the grace period (~1.3 s), and at 0.5 s per chunk it outlasts it (~13 s).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent

from tests.support import live
from tests.support.alim_serve import new_server, supervised
from tests.support.live import SHORT_QUESTION

pytestmark = pytest.mark.slow

GRACE = 5.0
EXIT_WAIT = GRACE + 10.0
TOKENS_BEFORE_SIGTERM = 2
INTERRUPTED = "Quraqlıqda bağı necə suvarım? Malç lazımdır?"
AFTER_RESTART = "Buğdanı nə vaxt suvarmaq lazımdır?"
CASES = {"stream_fits_in_grace": "0.05", "stream_outlasts_grace": "0.5"}


@dataclass
class Outcome:
    case: str
    events: list[ServerSentEvent]
    client_error: str | None
    exit_code: int | None
    exit_s: float
    first_answer: str
    messages_after_restart: list[dict[str, Any]]
    next_turn: httpx.Response
    messages_after_next_turn: list[dict[str, Any]]

    @property
    def kinds(self) -> list[str]:
        return [e.event for e in self.events]

    @property
    def completed(self) -> bool:
        return self.kinds[-2:] == ["sources", "done"]


@pytest.fixture(scope="module", params=list(CASES))
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """SIGTERM during a stream, the exit, a restart on the same data and one more turn."""
    case = request.param
    user, thread = live.new_id("user"), live.new_id("thread")
    server = new_server(
        tmp_path_factory.mktemp(case),
        ALIM_OFFLINE_DELAY=CASES[case],
        ALIM_SHUTDOWN_GRACE_SECONDS=str(GRACE),
    )
    with supervised(server):
        server.start()
        with live.client(server.base_url) as c:
            first = live.invoke(c, SHORT_QUESTION, user, thread)
            assert first.status_code == 200, first.text

        events: list[ServerSentEvent] = []
        client_error = None
        sent_at = 0.0
        try:
            with (
                live.client(server.base_url, timeout=EXIT_WAIT + 10) as streamer,
                live.open_stream(streamer, INTERRUPTED, user, thread) as src,
            ):
                assert src.response.status_code == 200
                for event in src.iter_sse():
                    events.append(event)
                    tokens = sum(e.event == "token" for e in events)
                    if tokens == TOKENS_BEFORE_SIGTERM and event.event == "token":
                        server.terminate()
                        sent_at = time.monotonic()
        except httpx.HTTPError as exc:  # the connection was cut mid-stream
            client_error = f"{type(exc).__name__}: {exc}"
        assert sent_at, f"the stream ended before {TOKENS_BEFORE_SIGTERM} tokens: {events}"

        try:
            exit_code: int | None = server.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            exit_code = None
        exit_s = time.monotonic() - sent_at
        server.stop()

        server.start()
        with live.client(server.base_url) as c:
            after_restart = live.history(c, thread, user)
            next_turn, _ = live.invoke_when_free(c, AFTER_RESTART, user, thread)
            after_next = live.history(c, thread, user) if next_turn.status_code == 200 else []
        result = Outcome(
            case,
            events,
            client_error,
            exit_code,
            exit_s,
            first.json()["response"],
            after_restart,
            next_turn,
            after_next,
        )
        print(
            f"\n[sigterm/{case}] client saw {result.kinds.count('token')} tokens then "
            f"{[k for k in result.kinds if k != 'token'][-3:]}, client error: {client_error}; "
            f"exit code {exit_code} after {exit_s:.2f} s"
        )
        return result


@pytest.mark.timeout(240)
def test_stream_in_flight_completes_or_ends_with_error_then_done(outcome: Outcome) -> None:
    kinds = outcome.kinds
    assert outcome.client_error is None, (outcome.client_error, kinds)
    assert kinds[0] == "metadata"
    assert kinds[-1] == "done", kinds
    assert kinds[-2] in ("sources", "error"), kinds
    assert kinds.count("done") == 1
    if kinds[-2] == "error":
        assert json.loads(outcome.events[-2].data)["code"], outcome.events[-2].data


@pytest.mark.timeout(240)
def test_process_exits_within_grace_plus_ten_seconds(outcome: Outcome) -> None:
    assert outcome.exit_code is not None, f"still running {EXIT_WAIT:.0f} s after SIGTERM"
    assert outcome.exit_code in (0, -signal.SIGTERM), outcome.exit_code
    assert outcome.exit_s <= EXIT_WAIT


@pytest.mark.timeout(240)
def test_history_after_restart_holds_only_whole_answers(outcome: Outcome) -> None:
    messages = outcome.messages_after_restart
    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant" and not m.get("aborted")]
    aborted = [m for m in messages if m.get("aborted")]
    assert users[0] == SHORT_QUESTION and users.count(INTERRUPTED) <= 1, messages
    if outcome.completed:  # the client saw the whole answer: it is stored whole
        assert answers == [outcome.first_answer, live.answer_of(outcome.events)], messages
        assert not aborted, messages
    else:  # the turn did not finish: nothing of its answer is stored, the turn is marked
        assert answers == [outcome.first_answer], messages
        assert all(m["content"] == "" for m in aborted) and len(aborted) <= 1, messages


@pytest.mark.timeout(240)
def test_thread_takes_a_new_turn_after_restart(outcome: Outcome) -> None:
    assert outcome.next_turn.status_code == 200, outcome.next_turn.text
    messages = outcome.messages_after_next_turn
    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant" and not m.get("aborted")]
    assert users[0] == SHORT_QUESTION and users[-1] == AFTER_RESTART, messages
    assert users.count(INTERRUPTED) <= 1, messages
    assert (
        answers[0] == outcome.first_answer and answers[-1] == outcome.next_turn.json()["response"]
    )
    assert len(answers) == (3 if outcome.completed else 2), messages
    assert messages[-1]["role"] == "assistant"
