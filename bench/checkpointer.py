"""Per-turn cost of the checkpointer: graph turns through `engine.Engine` in-process, with
the instant hashing embedder and the offline model, on SQLite, PostgreSQL and (as a baseline)
memory; plus the checkpoint bytes each turn adds."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.http_bench import QUESTION
from bench.servers import UNREACHABLE_WEATHER

POSTGRES_ADMIN = os.environ.get(
    "ALIM_TEST_POSTGRES_ADMIN", "postgresql://postgres@127.0.0.1:5432/test"
)


def _settings(work: Path, backend: str, postgres_url: str | None) -> Any:
    from alim.settings import Settings

    values: dict[str, Any] = {
        "env": "test",
        "data_dir": work / f"ckpt-{backend}",
        "kb_dir": None,
        "index_dir": work / "ckpt-index",
        "embedder": "hashing",
        "llm_provider": "offline",
        "checkpointer": backend,
        "weather_base_url": UNREACHABLE_WEATHER,
        "weather_timeout": 0.5,
        "groq_api_key": None,
        "openai_api_key": None,
    }
    if postgres_url:
        values["postgres_url"] = postgres_url
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def _payload_bytes(engine: Any, backend: str) -> int | None:
    """Bytes of checkpoint payload stored so far (checkpoints, channel blobs, pending writes)."""
    if backend == "sqlite":
        conn = engine.persistence.checkpointer.conn
        total = 0
        for sql in (
            "SELECT COALESCE(SUM(LENGTH(checkpoint) + LENGTH(metadata)), 0) FROM checkpoints",
            "SELECT COALESCE(SUM(LENGTH(value)), 0) FROM writes",
        ):
            async with conn.execute(sql) as cur:
                row = await cur.fetchone()
                total += int(row[0])
        return total
    if backend == "postgres":
        total = 0
        async with engine.persistence.checkpointer.conn.connection() as conn:
            for sql in (
                "SELECT COALESCE(SUM(pg_column_size(checkpoint) + pg_column_size(metadata)), 0)"
                " AS n FROM checkpoints",
                "SELECT COALESCE(SUM(octet_length(blob)), 0) AS n FROM checkpoint_blobs",
                "SELECT COALESCE(SUM(octet_length(blob)), 0) AS n FROM checkpoint_writes",
            ):
                cur = await conn.execute(sql)
                row = await cur.fetchone()
                total += int(row["n"])
        return total
    return None


async def _storage_bytes(settings: Any, engine: Any, backend: str) -> int | None:
    """What the store occupies on disk (SQLite file + WAL; the PostgreSQL database)."""
    if backend == "sqlite":
        base = settings.data_dir / "alim.db"
        return sum(p.stat().st_size for p in (base, Path(f"{base}-wal")) if p.exists())
    if backend == "postgres":
        async with engine.persistence.checkpointer.conn.connection() as conn:
            cur = await conn.execute("SELECT pg_database_size(current_database()) AS n")
            row = await cur.fetchone()
            return int(row["n"])
    return None


async def _bench_backend(
    work: Path, backend: str, postgres_url: str | None, threads: int, turns: int
) -> dict[str, Any]:
    from alim.threads import Owner
    from engine import Engine, GraphDeps, TurnRequest

    settings = _settings(work, backend, postgres_url)
    deps = GraphDeps(settings)
    deps.warm_up()
    owner = Owner("bench", "bench-user")
    async with Engine.open(settings, deps) as engine:
        for _ in range(3):  # warm-up turns (not counted)
            await engine.invoke(TurnRequest(QUESTION, owner))
        payload0 = await _payload_bytes(engine, backend)
        disk0 = await _storage_bytes(settings, engine, backend)
        per_turn: list[list[float]] = [[] for _ in range(turns)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        for _ in range(threads):
            thread_id = f"bench-{uuid.uuid4().hex[:10]}"
            for turn in range(turns):
                start = time.perf_counter()  # the same question every turn: only history grows
                await engine.invoke(TurnRequest(QUESTION, owner, thread_id))
                per_turn[turn].append(time.perf_counter() - start)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        payload1 = await _payload_bytes(engine, backend)
        disk1 = await _storage_bytes(settings, engine, backend)
    n = threads * turns
    all_turns = [x for row in per_turn for x in row]
    return {
        "backend": backend,
        "turns": n,
        "threads": threads,
        "turns_per_thread": turns,
        "p50_ms": round(float(np.percentile(all_turns, 50)) * 1000, 2),
        "p90_ms": round(float(np.percentile(all_turns, 90)) * 1000, 2),
        "p99_ms": round(float(np.percentile(all_turns, 99)) * 1000, 2),
        "mean_ms": round(wall * 1000 / n, 2),
        "process_cpu_ms_per_turn": round(cpu * 1000 / n, 2),
        "mean_ms_by_turn": [round(float(np.mean(row)) * 1000, 2) for row in per_turn],
        "payload_bytes_per_turn": None
        if payload0 is None or payload1 is None
        else round((payload1 - payload0) / n),
        "storage_bytes_per_turn": None
        if disk0 is None or disk1 is None
        else round((disk1 - disk0) / n),
    }


def _create_database() -> tuple[str, str]:
    import psycopg

    name = f"alim_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{POSTGRES_ADMIN.rsplit('/', 1)[0]}/{name}"


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_checkpointer(
    work: Path, threads: int, turns: int, log: Callable[[str], None]
) -> dict[str, Any]:
    out: dict[str, Any] = {"embedder": "hashing", "model": "offline", "rows": [], "skipped": {}}
    for backend in ("memory", "sqlite", "postgres"):
        db_name = None
        url = None
        try:
            if backend == "postgres":
                db_name, url = _create_database()
            row = asyncio.run(_bench_backend(work, backend, url, threads, turns))
        except Exception as exc:  # an unreachable PostgreSQL is reported, not fatal
            if backend != "postgres":
                raise
            out["skipped"][backend] = f"{type(exc).__name__}: {exc}"[:300]
            log(f"  {backend}: skipped ({exc})")
            continue
        finally:
            if db_name is not None:
                _drop_database(db_name)
        log(
            f"  {backend:8s} p50 {row['p50_ms']} ms  mean {row['mean_ms']} ms  "
            f"payload {row['payload_bytes_per_turn']} B/turn  by turn {row['mean_ms_by_turn']}"
        )
        out["rows"].append(row)
    return out
