"""`GET /api/v1/analytics` (seed 002's shape) and `POST /threads/{id}/feedback`, per partner key.

Every test uses a fresh partner, so its numbers are exactly what the test produced (the Postgres
database is shared by the whole session)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import THREADS, api_client, ask, assert_error, new_user

ANALYTICS = "/api/v1/analytics"
DROUGHT = "Fermada susuzluq var, nə edim?"
FROST = "How do I protect wheat from frost?"
ASK_HUMAN = "Mənə aqronomla danışmaq lazımdır"
OFF_TOPIC = "Who won the football match?"
METRICS = {
    "total_conversations",
    "messages",
    "ai_resolved",
    "escalated",
    "resolution_rate",
    "avg_response_time",
    "p95_response_time",
    "customer_satisfaction",
    "routes",
}


def today() -> date:
    return datetime.now(UTC).date()


def window(**extra: Any) -> dict[str, Any]:
    """A range around today (runs are stamped in UTC)."""
    return {
        "start_date": (today() - timedelta(days=1)).isoformat(),
        "end_date": (today() + timedelta(days=1)).isoformat(),
        **extra,
    }


async def fresh_partner(app: FastAPI, scopes: list[str] | None = None) -> str:
    key, _ = await app.state.keys.create(f"stats-{new_user()}", scopes or ["chat", "agent"])
    return key  # type: ignore[no-any-return]


async def report(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(ANALYTICS, params=window(**params))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def rate(
    client: httpx.AsyncClient,
    thread_id: str,
    user: str,
    run_id: str,
    score: int,
    comment: str | None = None,
) -> httpx.Response:
    return await client.post(
        f"{THREADS}/{thread_id}/feedback",
        json={"user_id": user, "run_id": run_id, "score": score, "comment": comment},
    )


async def traffic(client: httpx.AsyncClient) -> dict[str, Any]:
    """Three conversations, four runs: two answered agronomy turns, one off-topic answer, one
    escalation; two ratings (5 and 2)."""
    user = new_user()
    first = await ask(client, DROUGHT, user, "t1")
    second = await ask(client, FROST, user, "t1")
    human = await ask(client, ASK_HUMAN, user, "t2")
    other = await ask(client, OFF_TOPIC, user, "t3")
    assert human["escalated"] is True
    assert not first["escalated"] and not second["escalated"] and not other["escalated"]
    assert (await rate(client, "t1", user, first["run_id"], 5, "Çox faydalı")).status_code == 201
    assert (await rate(client, "t1", user, second["run_id"], 2)).status_code == 201
    return {"user": user, "runs": [first, second, human, other]}


async def test_metrics_count_what_the_partner_did(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        empty = await report(client)
        await traffic(client)
        body = await report(client)

    assert empty["metrics"]["total_conversations"] == 0
    assert empty["metrics"]["messages"] == 0
    assert empty["metrics"]["resolution_rate"] is None
    assert empty["metrics"]["customer_satisfaction"] is None
    assert empty["breakdown"] == []

    assert set(body) >= {"period", "metrics", "breakdown"}
    assert body["period"]["start"] == window()["start_date"]
    assert body["period"]["end"] == window()["end_date"]
    metrics = body["metrics"]
    assert set(metrics) == METRICS
    assert metrics["total_conversations"] == 3
    assert metrics["messages"] == 4
    assert metrics["escalated"] == 1
    assert metrics["ai_resolved"] == 3
    assert metrics["resolution_rate"] == pytest.approx(0.75)
    assert metrics["customer_satisfaction"] == pytest.approx(3.5)
    assert metrics["routes"] == {"agronomy": 2, "human": 1, "off_topic": 1}
    avg, p95 = metrics["avg_response_time"], metrics["p95_response_time"]
    assert isinstance(avg, float) and isinstance(p95, float)
    assert 0 <= avg <= p95, "p95 of four runs is the slowest; seconds, not milliseconds"

    (day,) = body["breakdown"]
    assert day["period"] == today().isoformat()
    for name in ("total_conversations", "messages", "ai_resolved", "escalated", "routes"):
        assert day[name] == metrics[name], name
    assert day["resolution_rate"] == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("group_by", "period"),
    [
        ("day", lambda d: d.isoformat()),
        ("week", lambda d: (d - timedelta(days=d.weekday())).isoformat()),
        ("month", lambda d: d.strftime("%Y-%m")),
    ],
)
async def test_group_by_periods(app: FastAPI, group_by: str, period: Any) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        user = new_user()
        await ask(client, DROUGHT, user)
        await ask(client, FROST, user)
        body = await report(client, group_by=group_by)

    assert body["period"]["group_by"] == group_by
    (row,) = body["breakdown"]
    assert row["period"] == period(today())
    assert row["messages"] == 2 and row["total_conversations"] == 2


async def test_metrics_parameter_selects_metrics(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        await traffic(client)
        body = await report(client, metrics="total_conversations, resolution_rate")

    assert body["metrics"] == {"total_conversations": 3, "resolution_rate": pytest.approx(0.75)}
    (row,) = body["breakdown"]
    assert set(row) == {"period", "total_conversations", "resolution_rate"}


async def test_ranges_outside_the_runs_are_empty(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        await ask(client, DROUGHT, new_user())
        response = await client.get(
            ANALYTICS,
            params={
                "start_date": (today() - timedelta(days=30)).isoformat(),
                "end_date": (today() - timedelta(days=2)).isoformat(),
            },
        )
    assert response.status_code == 200
    assert response.json()["metrics"]["messages"] == 0
    assert response.json()["breakdown"] == []


async def test_partners_only_see_their_own_numbers(app: FastAPI, client: httpx.AsyncClient) -> None:
    async with (
        api_client(app, await fresh_partner(app)) as a,
        api_client(app, await fresh_partner(app)) as b,
    ):
        of_a = await traffic(a)
        user = new_user()
        only = await ask(b, FROST, user)
        assert (await rate(b, only["thread_id"], user, only["run_id"], 1)).status_code == 201
        seen_by_a = (await report(a))["metrics"]
        seen_by_b = (await report(b))["metrics"]
        # B cannot rate A's runs, even knowing the thread, user and run ids.
        a_run = of_a["runs"][0]["run_id"]
        assert_error(await rate(b, "t1", of_a["user"], a_run, 5), 404, "thread_not_found")
        assert (await report(a))["metrics"] == seen_by_a

    assert (seen_by_a["total_conversations"], seen_by_a["messages"]) == (3, 4)
    assert seen_by_a["customer_satisfaction"] == pytest.approx(3.5)
    assert (seen_by_b["total_conversations"], seen_by_b["messages"]) == (1, 1)
    assert seen_by_b["escalated"] == 0
    assert seen_by_b["customer_satisfaction"] == pytest.approx(1.0)
    assert seen_by_b["routes"] == {"agronomy": 1}


async def test_breakdown_has_the_periods_satisfaction(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        await traffic(client)
        body = await report(client)
    (day,) = body["breakdown"]
    assert day["customer_satisfaction"] == pytest.approx(3.5)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"start_date": "2026-01-12", "end_date": "2026-01-01"}, 422, "invalid_date_range"),
        ({"start_date": "2025-01-01", "end_date": "2026-01-03"}, 422, "invalid_date_range"),
        ({"start_date": "2026-13-01", "end_date": "2026-12-31"}, 422, "validation_error"),
        ({"start_date": "yesterday", "end_date": "2026-01-12"}, 422, "validation_error"),
        ({"start_date": "2026-01-01"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        (
            {"start_date": "2026-01-01", "end_date": "2026-01-12", "group_by": "year"},
            422,
            "validation_error",
        ),
        (
            {"start_date": "2026-01-01", "end_date": "2026-01-12", "metrics": "revenue"},
            422,
            "invalid_metrics",
        ),
    ],
)
async def test_bad_ranges_are_422_with_a_code(
    client: httpx.AsyncClient, params: dict[str, str], status: int, code: str
) -> None:
    assert_error(await client.get(ANALYTICS, params=params), status, code)


async def test_longest_allowed_range_and_single_day(client: httpx.AsyncClient) -> None:
    longest = await client.get(
        ANALYTICS, params={"start_date": "2024-01-01", "end_date": "2025-01-01"}
    )  # 366 days
    assert longest.status_code == 200, longest.text
    one_day = await client.get(
        ANALYTICS, params={"start_date": "2026-01-12", "end_date": "2026-01-12"}
    )
    assert one_day.status_code == 200, one_day.text
    assert one_day.json()["period"] == {
        "start": "2026-01-12",
        "end": "2026-01-12",
        "group_by": "day",
    }


async def test_analytics_needs_a_chat_key(app: FastAPI) -> None:
    async with api_client(app, None) as anonymous:
        assert_error(await anonymous.get(ANALYTICS, params=window()), 401, "invalid_api_key")
    async with api_client(app, await fresh_partner(app, ["agent"])) as agent_only:
        assert_error(await agent_only.get(ANALYTICS, params=window()), 403, "insufficient_scope")


# --------------------------------------------------------------------------- feedback


async def test_a_deleted_thread_s_runs_do_not_come_back_with_its_id(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        user = new_user()
        old = await ask(client, DROUGHT, user, "reused")
        deleted = await client.delete(f"{THREADS}/reused", params={"user_id": user})
        assert deleted.status_code == 204, deleted.text
        new = await ask(client, FROST, user, "reused")  # the same id, a new conversation
        assert_error(await rate(client, "reused", user, old["run_id"], 1), 404, "run_not_found")
        assert (await rate(client, "reused", user, new["run_id"], 4)).status_code == 201
        metrics = (await report(client))["metrics"]
    assert metrics["total_conversations"] >= 1  # the old run still counts in the totals


async def test_feedback_is_for_the_threads_owner_and_its_runs(app: FastAPI) -> None:
    async with api_client(app, await fresh_partner(app)) as client:
        user = new_user()
        first = await ask(client, DROUGHT, user, "rated")
        elsewhere = await ask(client, FROST, user, "other-thread")

        created = await rate(client, "rated", user, first["run_id"], 4, "Yaxşı cavab")
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["run_id"] == first["run_id"] and body["score"] == 4
        assert body["id"] and body["created_at"]
        no_comment = await client.post(
            f"{THREADS}/rated/feedback",
            json={"user_id": user, "run_id": first["run_id"], "score": 3},
        )
        assert no_comment.status_code == 201, no_comment.text

        assert_error(
            await rate(client, "rated", new_user(), first["run_id"], 5), 404, "thread_not_found"
        )
        assert_error(
            await rate(client, "missing", user, first["run_id"], 5), 404, "thread_not_found"
        )
        assert_error(await rate(client, "rated", user, "no-such-run", 5), 404, "run_not_found")
        assert_error(
            await rate(client, "rated", user, elsewhere["run_id"], 5), 404, "run_not_found"
        )
        for score in (0, 6, -1):
            assert_error(
                await rate(client, "rated", user, first["run_id"], score), 422, "validation_error"
            )
        assert_error(
            await client.post(
                f"{THREADS}/rated/feedback",
                json={"user_id": user, "run_id": first["run_id"], "score": "five"},
            ),
            422,
            "validation_error",
        )
        assert_error(
            await client.post(
                f"{THREADS}/rated/feedback",
                json={"user_id": user, "run_id": first["run_id"], "score": 5, "stars": 5},
            ),
            422,
            "validation_error",
        )
        metrics = (await report(client))["metrics"]

    # Only the two accepted ratings count.
    assert metrics["customer_satisfaction"] == pytest.approx(3.5)
