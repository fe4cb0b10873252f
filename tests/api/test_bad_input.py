"""Bad requests to invoke and stream: a 4xx JSON error `{detail, code, request_id}` with a stable
code, sent before any stream starts, and nothing stored for the user."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.schemas import USER_ID_PATTERN
from tests.api.helpers import INVOKE, STREAM, THREADS, assert_error, new_user

QUESTION = "How do I protect wheat from frost?"
ENDPOINTS = pytest.mark.parametrize("url", [INVOKE, STREAM], ids=["invoke", "stream"])

# (id, change to a valid body, status, code); None as a value removes the field.
CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("empty-message", {"message": ""}, 422, "message_empty"),
    ("whitespace-message", {"message": " \n\t  "}, 422, "message_empty"),
    ("message-over-4000", {"message": "a" * 4001}, 422, "message_too_long"),
    ("nul-in-message", {"message": "hello\x00world"}, 422, "invalid_characters"),
    ("missing-message", {"message": None}, 422, "validation_error"),
    ("missing-user-id", {"user_id": None}, 422, "validation_error"),
    ("message-not-a-string", {"message": 123}, 422, "validation_error"),
    ("message-a-list", {"message": ["a", "b"]}, 422, "validation_error"),
    ("unknown-field", {"temperature": 0.2}, 422, "validation_error"),
    ("thread-id-with-space", {"thread_id": "my thread"}, 422, "validation_error"),
    ("thread-id-129-chars", {"thread_id": "t" * 129}, 422, "validation_error"),
    ("thread-id-empty", {"thread_id": ""}, 422, "validation_error"),
    ("thread-id-slash", {"thread_id": "a/b"}, 422, "validation_error"),
    ("user-id-129-chars", {"user_id": "u" * 129}, 422, "validation_error"),
    ("user-id-empty", {"user_id": ""}, 422, "validation_error"),
    ("user-id-control-char", {"user_id": "bad\nuser"}, 422, "validation_error"),
]


def body_for(user: str, change: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"message": QUESTION, "user_id": user, "thread_id": "bad-input"}
    body.update(change)
    return {k: v for k, v in body.items() if v is not None}


async def stored_threads(app: FastAPI, user_id: str) -> int:
    """Registry rows for this user id, under any partner (read from the store itself)."""
    db = app.state.engine.persistence.db
    row = await db.run(
        "SELECT COUNT(*) AS n FROM alim_threads WHERE user_id = ?", (user_id,), "one"
    )
    return int(row["n"])


@pytest.fixture
async def user(client: httpx.AsyncClient, app: FastAPI) -> AsyncIterator[str]:
    """A fresh user id; afterwards nothing may be stored for it."""
    user_id = new_user("bad-input")
    yield user_id
    listed = await client.get(THREADS, params={"user_id": user_id})
    assert listed.json()["threads"] == []
    assert await stored_threads(app, user_id) == 0


async def assert_nothing_stored(client: httpx.AsyncClient, app: FastAPI, body: dict) -> None:
    user_id = body.get("user_id")
    if isinstance(user_id, str):
        assert await stored_threads(app, user_id) == 0
        thread_id = body.get("thread_id")
        if isinstance(thread_id, str) and re.fullmatch(USER_ID_PATTERN, user_id):
            missing = await client.get(f"{THREADS}/bad-input", params={"user_id": user_id})
            assert_error(missing, 404, "thread_not_found")


@ENDPOINTS
@pytest.mark.parametrize(
    ("change", "status", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_invalid_body_is_rejected(
    client: httpx.AsyncClient,
    app: FastAPI,
    user: str,
    url: str,
    change: dict[str, Any],
    status: int,
    code: str,
) -> None:
    body = body_for(user, change)

    response = await client.post(url, json=body)

    error = assert_error(response, status, code)
    assert "Traceback" not in error["detail"]
    await assert_nothing_stored(client, app, body)


@ENDPOINTS
@pytest.mark.parametrize(
    "raw",
    [
        b'{"message": "hi", "user_id": ',
        b"{'message': 'hi'}",
        b"not json",
        b'{"message": "a"}}',
        b'{"message": "\xff\xfe", "user_id": "u"}',
        b"[" * 5000 + b"]" * 5000,
    ],
    ids=["truncated", "single-quotes", "text", "trailing-brace", "invalid-utf8", "deeply-nested"],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, user: str, url: str, raw: bytes
) -> None:
    response = await client.post(url, content=raw, headers={"Content-Type": "application/json"})

    assert_error(response, 400, "malformed_json")


@ENDPOINTS
@pytest.mark.parametrize(
    "payload", [[], "text", 42, None], ids=["list", "string", "number", "null"]
)
async def test_json_that_is_not_an_object_is_rejected(
    client: httpx.AsyncClient, user: str, url: str, payload: Any
) -> None:
    response = await client.post(
        url, content=json.dumps(payload), headers={"Content-Type": "application/json"}
    )

    assert_error(response, 422, "validation_error")


@ENDPOINTS
async def test_huge_body_is_413(
    client: httpx.AsyncClient, app: FastAPI, user: str, url: str
) -> None:
    body = {"message": "a" * 100_000, "user_id": user}

    response = await client.post(url, json=body)

    error = assert_error(response, 413, "payload_too_large")
    assert str(app.state.settings.max_body_bytes) in error["detail"]


@ENDPOINTS
async def test_huge_chunked_body_is_413(client: httpx.AsyncClient, user: str, url: str) -> None:
    payload = json.dumps({"message": "a" * 100_000, "user_id": user}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 8192):
            yield payload[start : start + 8192]

    response = await client.post(
        url, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_error(response, 413, "payload_too_large")


async def test_message_of_exactly_4000_chars_is_accepted(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    user_id = new_user()
    message = ("Quraqlıqda bağları necə suvarım? " * 200)[:4000]

    response = await client.post(INVOKE, json={"message": message, "user_id": user_id})

    assert response.status_code == 200, response.text
    assert await stored_threads(app, user_id) == 1


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        (
            "POST",
            "/api/v1/threads/t-1/feedback",
            {"user_id": "u", "run_id": "r", "score": 3, "comment": "a\x00b"},
        ),
        ("POST", "/api/v1/escalations/esc_1/reply", {"answer": "Suvarın\x00", "agent_id": "ag"}),
        (
            "POST",
            "/api/v1/webhooks",
            {"url": "http://127.0.0.1:9/h\x00ook", "events": ["message.received"]},
        ),
        ("PUT", "/api/v1/assistant", {"instructions": "Qısa cavab ver\x00"}),
        (
            "POST",
            "/api/v1/knowledge",
            {
                "title": "Zəfəran",
                "content": "Zəfəran soğanaqları\x00 avqustda əkilir, torpaq quru olmalıdır.",
                "language": "az",
            },
        ),
    ],
    ids=["feedback-comment", "reply", "webhook-url", "assistant-instructions", "article-content"],
)
async def test_a_nul_in_any_text_field_is_refused_before_it_reaches_the_store(
    client: httpx.AsyncClient, method: str, url: str, body: dict[str, Any]
) -> None:
    assert_error(await client.request(method, url, json=body), 422, "invalid_characters")
    if "webhooks" in url:
        return  # registering the escaped variant would leave an endpoint behind
    # An escaped backslash followed by "u0000" is ordinary text, not a NUL.
    text = json.dumps(body).replace("\\u0000", "\\\\u0000")
    r = await client.request(
        method, url, content=text, headers={"Content-Type": "application/json"}
    )
    assert r.status_code != 422 or r.json()["code"] != "invalid_characters", r.text
