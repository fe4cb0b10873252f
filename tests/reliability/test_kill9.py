"""SIGKILL in the middle of a streamed answer, then a restart on the same data.

Nothing of the interrupted turn's answer may survive: every completed turn is in the history, the
interrupted question is there once, followed by an empty assistant entry marked `aborted`
(`run_lost`) that the restarted server's reconciliation writes (issue 16, item 7), the thread's
message count equals its history, and the thread takes new turns (on Postgres the dead server's
advisory lock goes with its connections). The interrupted stream
resumes on the restarted server: every event the client saw was logged, and the run ends with
`error` (`run_lost`) and `done`, with no event id missing or repeated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent

from tests.support import live
from tests.support.alim_serve import new_server, supervised
from tests.support.live import DROUGHT_QUESTION, SHORT_QUESTION

pytestmark = pytest.mark.slow

INTERRUPTED = "Quraqlıqda bağı necə suvarım? Malç lazımdır?"
AFTER_RESTART = "Buğdanı nə vaxt suvarmaq lazımdır?"
TOKENS_BEFORE_KILL = 3
LOCK_RELEASE_WAIT = 15.0
LOST_AFTER = "2"  # seconds without a heartbeat: the killed server's run is lost
RECONCILE_WAIT = 20.0  # the reconciliation sweeps every 5 s


def reconciled_history(c: httpx.Client, thread: str, user: str) -> list[dict[str, Any]]:
    """The thread's history once the interrupted turn has been closed as aborted."""
    deadline = time.monotonic() + RECONCILE_WAIT
    while True:
        messages = live.history(c, thread, user)
        if any(m.get("aborted") for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.25)


def message_count(c: httpx.Client, thread: str, user: str) -> int:
    listed = c.get("/api/v1/threads", params={"user_id": user}).json()["threads"]
    return next(int(t["message_count"]) for t in listed if t["thread_id"] == thread)


@pytest.mark.timeout(240)
def test_sigkill_mid_stream_keeps_completed_turns_and_no_half_answer(
    backend_env: dict[str, str], tmp_path: Path
) -> None:
    user, thread = live.new_id("user"), live.new_id("thread")
    server = new_server(
        tmp_path, ALIM_OFFLINE_DELAY="0.05", ALIM_RUN_LOST_AFTER=LOST_AFTER, **backend_env
    )
    with supervised(server):
        server.start()
        with live.client(server.base_url) as c:
            # Two completed turns: one invoked, one streamed to the end.
            first = live.invoke(c, DROUGHT_QUESTION, user, thread)
            assert first.status_code == 200, first.text
            second = live.stream_events(c, SHORT_QUESTION, user, thread)
            assert [e.event for e in second][-2:] == ["sources", "done"]
        completed = [first.json()["response"], live.answer_of(second)]

        # The third turn: metadata and a few tokens, then the server dies (SIGKILL).
        seen: list[ServerSentEvent] = []
        with (
            live.client(server.base_url) as streamer,
            live.open_stream(streamer, INTERRUPTED, user, thread) as source,
        ):
            assert source.response.status_code == 200
            for event in source.iter_sse():
                seen.append(event)
                if sum(e.event == "token" for e in seen) == TOKENS_BEFORE_KILL:
                    assert server.kill() == -9
                    break
        kinds = [e.event for e in seen]
        assert kinds[0] == "metadata" and kinds.count("token") == TOKENS_BEFORE_KILL, kinds
        assert "sources" not in kinds and "done" not in kinds, kinds
        assert json.loads(seen[0].data)["thread_id"] == thread
        partial = live.answer_of(seen)

        # Restart on the same data (same SQLite file, or same Postgres database).
        server.start()
        with live.client(server.base_url) as c:
            # The interrupted stream resumes: what was logged after the last event seen, then
            # the end of a lost run.
            run_id = json.loads(seen[0].data)["run_id"]
            with live.resume_stream(c, run_id, user, seen[-1].id) as source:
                assert source.response.status_code == 200, source.response.read()
                resumed = list(source.iter_sse())
            events = seen + resumed
            assert [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
            assert [e.event for e in resumed][-2:] == ["error", "done"], resumed
            assert json.loads(resumed[-2].data)["code"] == "run_lost"
            status = c.get(f"/api/v1/runs/{run_id}", params={"user_id": user}).json()
            assert (status["status"], status["error"]["code"]) == ("error", "run_lost")

            messages = reconciled_history(c, thread, user)
            users = [m["content"] for m in messages if m["role"] == "user"]
            answers = [
                m["content"] for m in messages if m["role"] == "assistant" and not m.get("aborted")
            ]
            assert users == [DROUGHT_QUESTION, SHORT_QUESTION, INTERRUPTED], messages
            assert answers == completed, messages  # no third (half) answer was stored
            assert partial not in answers
            # The interrupted turn is closed as aborted, and the books agree with the history.
            assert messages[-1]["role"] == "assistant", messages
            assert (messages[-1]["aborted"], messages[-1]["content"]) == ("run_lost", "")
            assert message_count(c, thread, user) == len(messages)

            # The thread takes a new turn (a lasting 409 would mean a leaked lock).
            after, busy = live.invoke_when_free(c, AFTER_RESTART, user, thread, LOCK_RELEASE_WAIT)
            assert after.status_code == 200, (busy, after.text)
            print(
                f"\n[kill9/{backend_env['ALIM_CHECKPOINTER']}] interrupted question stored "
                f"{users.count(INTERRUPTED)}x; 409s before the next turn: {busy}"
            )
            messages = live.history(c, thread, user)
            assert message_count(c, thread, user) == len(messages)

    users = [m["content"] for m in messages if m["role"] == "user"]
    answers = [m["content"] for m in messages if m["role"] == "assistant" and not m.get("aborted")]
    assert users.count(INTERRUPTED) == 1, messages
    assert users[:2] == [DROUGHT_QUESTION, SHORT_QUESTION] and users[-1] == AFTER_RESTART
    assert answers == [*completed, after.json()["response"]], messages
    assert messages[-1]["role"] == "assistant"
