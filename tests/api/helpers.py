"""Small helpers shared by the API tests (the fixtures themselves live in conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from alim.settings import DEV_API_KEY, Settings
from api.app import create_app
from engine import GraphDeps
from tests.support.fakes import HashingEmbeddings

INVOKE = "/api/v1/graph/invoke"
STREAM = "/api/v1/graph/stream"
THREADS = "/api/v1/threads"
ERROR_KEYS = {"detail", "code", "request_id"}
SOURCE_KEYS = {"id", "title", "score", "document_id", "dataset_id", "chunk_index", "page_number"}
"""What a citation says: the article or document, its dataset, its chunk and (PDFs) page."""


def new_user(prefix: str = "user") -> str:
    """A user id no other test (nor an earlier run on the shared Postgres) has used."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app with its lifespan, over the fixture knowledge base and hashing embedder."""
    application = create_app(settings, GraphDeps(settings, _embeddings=HashingEmbeddings()))
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def api_client(
    app: FastAPI, key: str | None = DEV_API_KEY
) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"X-API-Key": key} if key is not None else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://alim.test", headers=headers, timeout=30
    ) as c:
        yield c


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The documented error shape: exactly {detail, code, request_id}, id = the header's."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["code"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


async def ask(
    client: httpx.AsyncClient,
    message: str,
    user_id: str,
    thread_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One successful invoke turn; its JSON body."""
    body: dict[str, Any] = {"message": message, "user_id": user_id, **extra}
    if thread_id is not None:
        body["thread_id"] = thread_id
    response = await client.post(INVOKE, json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def history(client: httpx.AsyncClient, thread_id: str, user_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"{THREADS}/{thread_id}", params={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["messages"]  # type: ignore[no-any-return]


async def thread_list(client: httpx.AsyncClient, user_id: str) -> list[dict[str, Any]]:
    response = await client.get(THREADS, params={"user_id": user_id})
    assert response.status_code == 200, response.text
    return response.json()["threads"]  # type: ignore[no-any-return]


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `alim …` (python -m cli) in a process of its own, in the data directory."""
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args],
        env=env,
        cwd=env["ALIM_DATA_DIR"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    if ok:
        assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done
