"""Fixtures of the reliability tests: server environments for the real Postgres and Redis."""

from __future__ import annotations

import pytest

from tests.support.alim_serve import postgres_env


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The checkpointer settings, once for SQLite (under the data directory) and once for the
    session's Postgres database."""
    if request.param == "postgres":
        return postgres_env(request.getfixturevalue("postgres_url"))
    return {"ALIM_CHECKPOINTER": "sqlite"}
