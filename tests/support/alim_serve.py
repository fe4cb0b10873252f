"""`alim serve` in a real process on 127.0.0.1, for the integration and reliability tests. The
launcher is `bench.procs.Server` (the benchmarks start theirs with it too); this module gives the
tests' settings.

    with running_server(tmp_path, ALIM_OFFLINE_DELAY="0.05") as base_url:
        httpx.get(f"{base_url}/health")

    with new_server(tmp_path, ALIM_OFFLINE_DELAY="0.05") as server:
        server.base_url, server.pid, server.rss()
        server.kill()        # SIGKILL, reaped (or terminate(), wait(), stop())
        server.start()       # same data directory and environment, new port

A server gets a clean ALIM_* environment: data under its data directory, the small fixture
knowledge base (the real embedder is fast on it), the index under `<data dir>/index`, an
unreachable weather service and the offline model; keyword arguments add or override variables.
Its stdout and stderr go to `<data dir>/server-<port>.log`, which `ServerError` quotes when it
does not start and `server.output()` returns (across restarts).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from bench.procs import Server, alim_serve, clean_env
from tests.conftest import FIXTURE_KB, UNREACHABLE

STOP_TIMEOUT = 20.0  # for the process to exit after SIGTERM (and again after SIGKILL)
RUNNING_STOP_TIMEOUT = 15.0  # the same, for running_server


def server_settings(data_dir: Path, **overrides: str) -> dict[str, str]:
    """The ALIM_* settings of a test server (or CLI run) over `data_dir`."""
    return {
        "ALIM_DATA_DIR": str(data_dir),
        "ALIM_KB_DIR": str(FIXTURE_KB),
        "ALIM_INDEX_DIR": str(data_dir / "index"),
        "ALIM_WEATHER_BASE_URL": UNREACHABLE,
        "ALIM_LLM_PROVIDER": "offline",
        **overrides,
    }


def postgres_env(url: str) -> dict[str, str]:
    """Settings of a server on the real Postgres (a small pool: several servers share it)."""
    return {
        "ALIM_CHECKPOINTER": "postgres",
        "ALIM_POSTGRES_URL": url,
        "ALIM_POSTGRES_POOL_SIZE": "5",
    }


def server_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    """A subprocess environment: the caller's, minus its ALIM_* settings, plus ours."""
    return clean_env(**server_settings(data_dir, **overrides))


def new_server(data_dir: Path, **env: str) -> Server:
    """`alim serve` over `data_dir` with the tests' settings and `env`; not started yet."""
    return alim_serve(data_dir, server_settings(data_dir, **env), stop_timeout=STOP_TIMEOUT)


@contextlib.contextmanager
def supervised(*servers: Server, last: int = 6000) -> Iterator[None]:
    """Stop `servers` (last first) when the block ends; when it fails, print the end of what
    each of them wrote first (pytest shows it with the failure)."""
    try:
        yield
    except BaseException:
        for server in servers:
            print(f"--- {server.name} on {server.base_url}\n{server.output(last)}")
        raise
    finally:
        for server in reversed(servers):
            server.stop()


@contextlib.contextmanager
def running_server(data_dir: Path, **env: str) -> Iterator[str]:
    """Start `alim serve` on a free port; yields its base URL; SIGTERM (then kill) at exit."""
    server = new_server(data_dir, **env)
    server.stop_timeout = RUNNING_STOP_TIMEOUT
    with server:
        yield server.base_url
