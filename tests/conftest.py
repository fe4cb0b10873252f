"""Shared fixtures. Unit tests use a small fixture corpus, a hashing embedder and in-memory
checkpoints; tests marked `slow` use the real embedder and the real index, built once and cached
between runs in ~/.cache/alim-test (rebuilt only when the knowledge base's content hash changes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from alim.settings import Settings
from engine import GraphDeps
from tests.support.fake_llm import FakeLLM
from tests.support.fake_weather import FakeWeather
from tests.support.fakes import HashingEmbeddings
from tests.support.servers import serve_in_thread

FIXTURE_KB = Path(__file__).parent / "fixtures" / "kb"
REAL_CACHE = Path(os.environ.get("ALIM_TEST_CACHE", Path.home() / ".cache" / "alim-test"))
UNREACHABLE = "http://127.0.0.1:9/v1"


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "data_dir": tmp_path,
        "kb_dir": FIXTURE_KB,
        "checkpointer": "memory",
        "weather_base_url": UNREACHABLE,
        "weather_timeout": 0.5,
        "llm_provider": "offline",
        "groq_api_key": None,
        "openai_api_key": None,
        # The tests' webhook receivers listen on loopback (alim.netguard refuses it otherwise).
        "webhook_allowed_networks": ["127.0.0.0/8", "::1/128"],
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def embeddings() -> HashingEmbeddings:
    return HashingEmbeddings()


@pytest.fixture
def deps(settings: Settings, embeddings: HashingEmbeddings) -> GraphDeps:
    return GraphDeps(settings, _embeddings=embeddings)


@pytest.fixture(scope="session")
def real_settings_factory(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Settings over the bundled knowledge base and the real embedder; the index is shared."""

    def factory(**overrides: object) -> Settings:
        values: dict[str, object] = {"kb_dir": None, "index_dir": REAL_CACHE / "index"}
        values.update(overrides)
        return make_settings(tmp_path_factory.mktemp("real"), **values)

    return factory


@pytest.fixture(scope="session")
def real_deps(real_settings_factory) -> GraphDeps:  # type: ignore[no-untyped-def]
    """Real embedder + real index (built once into the cache if missing or stale)."""
    settings = real_settings_factory()
    deps = GraphDeps(settings)
    deps.warm_up()
    return deps


@pytest.fixture
def fake_llm() -> Iterator[tuple[FakeLLM, str]]:
    llm = FakeLLM()
    with serve_in_thread(llm.app()) as url:
        yield llm, url


@pytest.fixture
def fake_weather() -> Iterator[tuple[FakeWeather, str]]:
    weather = FakeWeather()
    with serve_in_thread(weather.app()) as url:
        yield weather, f"{url}/v1"


def _postgres_admin_url() -> str:
    return os.environ.get("ALIM_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the real PostgreSQL server (dropped at the end of the session).

    Unreachable Postgres skips these tests locally but fails them in CI (CI=true)."""
    import uuid

    import psycopg

    admin = _postgres_admin_url()
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    name = f"alim_test_{uuid.uuid4().hex[:10]}"
    with conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis on 127.0.0.1:6379 (db 15 for tests); skipped locally, failed in CI."""
    import redis

    url = os.environ.get("ALIM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis is required in CI: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url


@pytest.hookimpl(hookwrapper=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: object) -> Iterator[None]:
    """On a test's timeout, print where every asyncio task of the running loop waits first:
    pytest-timeout's own dump shows threads only, and an async test hangs inside a task."""
    import asyncio
    import signal
    import sys
    from types import FrameType

    yield
    timeout_handler = signal.getsignal(signal.SIGALRM)
    if not callable(timeout_handler):
        return

    def dump_tasks_then_time_out(signum: int, frame: FrameType | None) -> None:
        try:
            tasks = asyncio.all_tasks(asyncio.get_running_loop())
        except RuntimeError:  # no loop running in the main thread
            tasks = set()
        for task in tasks:
            print(f"--- asyncio task {task.get_name()}", file=sys.stderr)
            task.print_stack(limit=30, file=sys.stderr)
        timeout_handler(signum, frame)

    signal.signal(signal.SIGALRM, dump_tasks_then_time_out)
