"""`GET /metrics` (Prometheus text format) as an operator's scraper reads it after real traffic,
and the structured JSON logs (alim/logs.py) as a log shipper reads them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from alim.logs import JsonFormatter, configure_logging
from alim.settings import Settings
from tests.api.helpers import (
    INVOKE,
    STREAM,
    THREADS,
    api_client,
    ask,
    assert_error,
    new_user,
    running_app,
)
from tests.support.fake_llm import FakeLLM

DROUGHT_AZ = "Fermada susuzluq var, nə edim?"
FROST_EN = "How do I protect wheat from frost?"
HUMAN = "I want to talk to an agronomist"
UNREACHABLE_LLM = {
    "llm_provider": "openai",
    "openai_base_url": "http://127.0.0.1:9/v1",
    "openai_api_key": "x",
    "llm_max_retries": 0,
    "llm_timeout": 1,
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    """Every sample of /metrics, by (name, labels)."""
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def label_values(samples: Samples) -> set[str]:
    return {v for _, labels in samples for _, v in labels}


async def stream(client: httpx.AsyncClient, message: str, user: str, **extra: Any) -> str:
    response = await client.post(STREAM, json={"message": message, "user_id": user, **extra})
    assert response.status_code == 200, response.text
    assert "event: done" in response.text
    return response.text


# ---------------------------------------------------------------------------------- metrics
async def test_an_invoke_and_a_stream_show_up_in_the_metrics(client: httpx.AsyncClient) -> None:
    await ask(client, DROUGHT_AZ, new_user())
    await stream(client, FROST_EN, new_user())

    m = await scrape(client)

    invoke = {"method": "POST", "route": "/api/v1/graph/invoke", "status": "200"}
    assert value(m, "alim_http_request_duration_seconds_count", **invoke) == 1
    assert value(m, "alim_http_request_duration_seconds_sum", **invoke) > 0
    assert value(m, "alim_http_request_duration_seconds_bucket", **invoke, le="+Inf") == 1
    assert (
        value(
            m,
            "alim_http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/graph/stream",
            status="200",
        )
        == 1
    )
    assert value(m, "alim_runs_total", route="agronomy", outcome="ok") == 2
    for node in ("route", "retrieve", "assess", "generate"):
        assert value(m, "alim_node_duration_seconds_count", node=node) == 2, node
    assert value(m, "alim_time_to_first_token_seconds_count") == 2
    assert value(m, "alim_time_to_first_token_seconds_sum") > 0
    assert value(m, "alim_answer_chunks_total") > 0
    assert value(m, "alim_active_streams") == 0
    assert value(m, "alim_escalations_total", reason="user_requested") == 0


async def test_routes_are_labelled_by_template_not_by_path(client: httpx.AsyncClient) -> None:
    user = new_user()
    thread = f"thread-{new_user()}"
    await ask(client, DROUGHT_AZ, user, thread)
    assert (await client.get(f"{THREADS}/{thread}", params={"user_id": user})).status_code == 200
    assert (await client.get(f"/api/v1/no-such-{thread}")).status_code == 404

    m = await scrape(client)

    detail = {"method": "GET", "route": "/api/v1/threads/{thread_id}", "status": "200"}
    assert value(m, "alim_http_request_duration_seconds_count", **detail) == 1
    assert (
        value(
            m,
            "alim_http_request_duration_seconds_count",
            method="GET",
            route="unmatched",
            status="404",
        )
        == 1
    )
    assert not any(thread in v for v in label_values(m))


async def test_escalations_are_counted_by_reason(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await ask(client, HUMAN, new_user()))["escalated"] is True
    key, _ = await app.state.keys.create(new_user("metrics-partner"), ["chat", "admin"])
    async with api_client(app, key) as strict:
        response = await strict.put("/api/v1/assistant", json={"escalation_threshold": 0.99})
        assert response.status_code == 200, response.text
        assert (await ask(strict, DROUGHT_AZ, new_user()))["escalation_reason"] == "low_confidence"

    m = await scrape(client)

    assert value(m, "alim_escalations_total", reason="user_requested") == 1
    assert value(m, "alim_escalations_total", reason="low_confidence") == 1
    assert value(m, "alim_runs_total", route="human", outcome="ok") == 1


async def test_rate_limited_requests_are_counted(
    api_settings_factory: Callable[..., Settings],
) -> None:
    async with running_app(api_settings_factory(rate_limit_per_minute=1)) as app:
        async with api_client(app) as client:
            statuses = []
            # Two requests within one minute window are enough; a third covers a window edge.
            for _ in range(3):
                response = await client.get(THREADS, params={"user_id": new_user()})
                statuses.append(response.status_code)
                if response.status_code == 429:
                    assert_error(response, 429, "rate_limited")
                    assert int(response.headers["retry-after"]) > 0
                    break
            assert statuses[-1] == 429, statuses

            m = await scrape(client)  # /metrics needs no key and is not rate limited

    assert value(m, "alim_rate_limited_total", limit="requests") == 1
    assert (
        value(
            m,
            "alim_http_request_duration_seconds_count",
            method="GET",
            route="/api/v1/threads",
            status="429",
        )
        == 1
    )


async def test_failed_runs_are_counted_as_errors(
    api_settings_factory: Callable[..., Settings],
) -> None:
    async with running_app(api_settings_factory(**UNREACHABLE_LLM)) as app:
        async with api_client(app) as client:
            response = await client.post(INVOKE, json={"message": DROUGHT_AZ, "user_id": "u"})
            assert_error(response, 503, "provider_unavailable")
            m = await scrape(client)

    assert value(m, "alim_runs_total", route="unknown", outcome="error") == 1
    assert value(m, "alim_runs_total", route="agronomy", outcome="ok") == 0
    assert (
        value(
            m,
            "alim_http_request_duration_seconds_count",
            method="POST",
            route="/api/v1/graph/invoke",
            status="503",
        )
        == 1
    )


async def test_tokens_reported_by_a_hosted_model_are_counted(
    api_settings_factory: Callable[..., Settings], fake_llm: tuple[FakeLLM, str]
) -> None:
    llm, url = fake_llm
    settings = api_settings_factory(
        llm_provider="openai", openai_base_url=f"{url}/v1", openai_api_key="k"
    )
    async with running_app(settings) as app, api_client(app) as client:
        body = await ask(client, DROUGHT_AZ, new_user())
        m = await scrape(client)

    # The fake model reports 11 prompt tokens and one completion token per streamed word.
    assert body["usage"]["input_tokens"] == 11
    assert value(m, "alim_llm_tokens_total", kind="input") == 11
    assert value(m, "alim_llm_tokens_total", kind="output") == len(llm.tokens())


async def test_no_partner_user_or_key_appears_in_any_label(app: FastAPI) -> None:
    partner = f"acme-farms-{new_user('p')}"
    user = f"farmer-{new_user('u')}"
    key, _ = await app.state.keys.create(partner, ["chat", "admin", "agent"])
    async with api_client(app, key) as client:
        body = await ask(client, DROUGHT_AZ, user)
        await stream(client, FROST_EN, user)
        await ask(client, HUMAN, user)
        await client.get(f"{THREADS}/{body['thread_id']}", params={"user_id": user})
        await client.get(THREADS, params={"user_id": user})
        await client.get("/api/v1/escalations")
        m = await scrape(client)

    values = label_values(m)
    assert values, "the metrics have labelled series"
    for secret in (partner, user, key, body["thread_id"], body["run_id"], "dev"):
        assert not any(secret in v for v in values), (secret, sorted(values))
    names = {label for _, labels in m for label, _ in labels}
    allowed = {"method", "route", "status", "outcome", "node", "reason", "kind", "limit", "le"}
    assert names <= allowed


# ---------------------------------------------------------------------------------- logs
class JsonRecords(logging.Handler):
    """Formats every record with JsonFormatter at the moment it is logged (as a real handler)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def json_logs() -> Iterator[JsonRecords]:
    handler = JsonRecords()
    logger = logging.getLogger("alim")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_log_records_carry_the_request_id_and_partner(
    api_settings_factory: Callable[..., Settings], json_logs: JsonRecords
) -> None:
    partner = new_user("logged-partner")
    message = "Pomidor yarpaqlarında ləkələr var, telefonum +994 50 123 45 67"
    async with running_app(api_settings_factory(**UNREACHABLE_LLM)) as app:
        startup = json_logs.entries()
        key, _ = await app.state.keys.create(partner, ["chat", "admin"])
        async with api_client(app, key) as client:
            response = await client.post(
                INVOKE,
                json={"message": message, "user_id": "farmer-1"},
                headers={"X-Request-ID": "req-logs-1"},
            )
            assert_error(response, 503, "provider_unavailable")
            article = {
                "title": "Zəfəran",
                "content": "Zəfəran soğanlarını avqustda quru torpağa əkin.",
                "language": "az",
            }
            added = await client.post(
                "/api/v1/knowledge", json=article, headers={"X-Request-ID": "req-logs-2"}
            )
            assert added.status_code == 201, added.text

    # Outside any request (start-up), records have no request context.
    ready = [e for e in startup if e["msg"].startswith("ALİM ready")]
    assert ready, startup
    assert "request_id" not in ready[0] and "partner" not in ready[0]
    for entry in startup:
        assert {"ts", "level", "logger", "msg"} <= set(entry)

    entries = json_logs.entries()
    failed = [e for e in entries if e.get("request_id") == "req-logs-1"]
    assert failed, entries
    assert all(e["partner"] == partner for e in failed)
    assert any(e["level"] == "warning" and "provider_unavailable" in e["msg"] for e in failed)
    ingested = [e for e in entries if e.get("request_id") == "req-logs-2"]
    assert any(e["level"] == "info" and "ingested article" in e["msg"] for e in ingested)
    assert all(e["partner"] == partner for e in ingested)

    # Never the farmer's words, the phone number or the key.
    for line in json_logs.lines:
        assert "Pomidor yarpaqlarında" not in line
        assert "123 45 67" not in line
        assert key not in line


def test_configure_logging_writes_one_json_object_per_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {n: logging.getLogger(n).level for n in ("httpx", "httpcore", "openai", "groq")}
    uvicorn = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate)
        for n in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    try:
        configure_logging("info")
        logging.getLogger("alim.test").info("ready on port %d", 8000)
        logging.getLogger("alim.test").debug("not shown at info")
        logging.getLogger("httpx").info("HTTP Request: GET https://example.invalid/?key=x")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("alim.test").exception("it failed")
        for handler in root.handlers:
            handler.flush()
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)
        for name, (handlers, propagate) in uvicorn.items():
            logging.getLogger(name).handlers[:] = handlers
            logging.getLogger(name).propagate = propagate

    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert [e["msg"] for e in lines] == ["ready on port 8000", "it failed"], err
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "alim.test"
    assert "ValueError: boom" in lines[1]["exc"]


async def test_a_metrics_token_closes_the_endpoint_to_everyone_else(
    api_settings_factory: Callable[..., Settings],
) -> None:
    settings = api_settings_factory(metrics_token="scrape-me-0000")  # pragma: allowlist secret
    async with running_app(settings) as app, api_client(app, key=None) as anyone:
        assert_error(await anyone.get("/metrics"), 401, "invalid_api_key")
        wrong = await anyone.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await anyone.get("/metrics", headers={"Authorization": "Bearer scrape-me-0000"})
        assert ok.status_code == 200 and "alim_" in ok.text
