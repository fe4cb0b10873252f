"""In-process API fixtures: the real app (lifespan included) over httpx's ASGI transport, with
the fixture knowledge base and the hashing embedder; parametrized over SQLite and Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alim.settings import DEV_API_KEY, Settings
from api.app import create_app
from engine import GraphDeps
from tests.conftest import make_settings
from tests.support.fakes import HashingEmbeddings

DEV_HEADERS = {"X-API-Key": DEV_API_KEY}


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api_settings_factory(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Callable[..., Settings]:
    def factory(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"checkpointer": backend}
        if backend == "postgres":
            values["postgres_url"] = request.getfixturevalue("postgres_url")
        values.update(overrides)
        return make_settings(tmp_path, **values)

    return factory


@pytest.fixture
def api_settings(api_settings_factory: Callable[..., Settings]) -> Settings:
    return api_settings_factory()


@pytest.fixture
async def app(api_settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(api_settings, GraphDeps(api_settings, _embeddings=HashingEmbeddings()))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://alim.test", headers=DEV_HEADERS, timeout=30
    ) as c:
        yield c
