"""A turn whose bookkeeping did not commit (issue 16, item 7), on SQLite and Postgres.

The failure is injected in the database itself: a trigger that refuses every new escalation row,
so the graph has paused for a human but the transaction that records the request for a human
fails. After the trigger is gone and the server restarts, the start-up reconciliation writes the
books: the escalation an agronomist sees, the thread waiting for them, a message count equal to
the history, the run recorded as interrupted. (`kill -9` mid-answer:
tests/reliability/test_kill9.py.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx

from alim.db import Database
from alim.settings import Settings
from tests.api.helpers import STREAM, THREADS, api_client, new_user, running_app

ASK_HUMAN = "Mənə aqronomla danışmaq lazımdır"
FOLLOW_UP = "Pomidorun yarpaqları saralır"

SQLITE_REFUSE = [
    "CREATE TRIGGER alim_test_refuse BEFORE INSERT ON alim_escalations "
    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
]
POSTGRES_REFUSE = [
    "CREATE FUNCTION alim_test_refuse() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER alim_test_refuse BEFORE INSERT ON alim_escalations "
    "FOR EACH ROW EXECUTE FUNCTION alim_test_refuse()",
]


async def _refuse_escalations(db: Database, on: bool) -> None:
    if db.kind == "postgres":
        statements = (
            POSTGRES_REFUSE
            if on
            else [
                "DROP TRIGGER alim_test_refuse ON alim_escalations",
                "DROP FUNCTION alim_test_refuse()",
            ]
        )
    else:
        statements = SQLITE_REFUSE if on else ["DROP TRIGGER alim_test_refuse"]
    for sql in statements:
        await db.run(sql)


async def _stream(client: httpx.AsyncClient, message: str, user: str) -> tuple[str, list[str]]:
    """The run id and the event names of one streamed turn."""
    response = await client.post(STREAM, json={"message": message, "user_id": user})
    assert response.status_code == 200, response.text
    text = response.text.replace("\r\n", "\n")
    names = re.findall(r"^event: ?(\S+)", text, re.M)
    metadata = re.search(r"^event: ?metadata\n(?:id: .*\n)?data: ?(.*)$", text, re.M)
    assert metadata is not None, text[:300]
    run_id = json.loads(metadata.group(1))["run_id"]
    return run_id, names


async def _books(client: httpx.AsyncClient, user: str) -> tuple[dict[str, Any], list[Any]]:
    (summary,) = (await client.get(THREADS, params={"user_id": user})).json()["threads"]
    detail = await client.get(f"{THREADS}/{summary['thread_id']}", params={"user_id": user})
    assert detail.status_code == 200, detail.text
    return summary, detail.json()["messages"]


async def test_a_request_for_a_human_whose_books_failed_is_reconciled_at_start_up(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory()
    user = new_user()
    async with running_app(settings) as app:
        key, _ = await app.state.keys.create(f"half-{new_user()}", ["chat", "agent"])
        db = app.state.engine.persistence.db
        await _refuse_escalations(db, True)
        try:
            async with api_client(app, key) as client:
                run_id, names = await _stream(client, ASK_HUMAN, user)
                assert names[-2:] == ["error", "done"], names  # the books did not commit
                before = await client.get(f"/api/v1/runs/{run_id}", params={"user_id": user})
                assert before.json()["status"] == "error"
                assert (await client.get("/api/v1/escalations")).json()["escalations"] == []
        finally:
            await _refuse_escalations(db, False)

    async with running_app(settings) as app, api_client(app, key) as client:  # restart
        (escalation,) = (await client.get("/api/v1/escalations")).json()["escalations"]
        summary, messages = await _books(client, user)
        run = (await client.get(f"/api/v1/runs/{run_id}", params={"user_id": user})).json()
        # A new message goes to the agronomist, as for any thread waiting for one.
        follow_up = await client.post(
            "/api/v1/graph/invoke",
            json={"message": FOLLOW_UP, "user_id": user, "thread_id": summary["thread_id"]},
        )

    assert (escalation["thread_id"], escalation["question"]) == (summary["thread_id"], ASK_HUMAN)
    assert escalation["status"] == "open"
    assert summary["status"] == "awaiting_human"
    assert summary["message_count"] == len(messages)
    assert messages[-1]["role"] == "user" and messages[-1]["content"] == ASK_HUMAN
    assert run["status"] == "interrupted" and run["result"]["escalation_id"] == escalation["id"]
    assert follow_up.status_code == 200, follow_up.text
    assert follow_up.json()["escalated"] is True
