"""Durable runs: what the run-event log costs, how fast a finished run is replayed, and whether
streams cut at random points resume whole.

Every run here answers with a constant OpenAI-compatible model streaming 200 chunks
(`bench.chat_app`): ~205 events per run, the log's worst case per turn.

- Cost: sequential streams against two `alim serve` processes (hashing embedder, SQLite), one
  with the event log (`ALIM_RUN_EVENT_LOG=true`, the default) and one without; stream wall time
  p50 and the server's CPU seconds per turn.
- Replay: a finished run replayed from its first event with `GET /runs/{id}/stream`; time to
  `done`.
- Cuts: streams (the model slowed to 5 ms a chunk) hung up after a random number of events, then
  resumed with `Last-Event-ID`; a stream survives when its event ids run 1…n without a gap or a
  repeat, it ends with `done`, and its tokens are the run's stored answer byte for byte.
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from bench.client import pct
from bench.http_bench import ALIM_HEADERS
from bench.procs import HOST, Server, clean_env
from bench.servers import _server, alim_server

QUESTION = "Quraqlıqda pomidoru necə suvarım?"


def _stream(
    c: httpx.Client, method: str, url: str, stop_after: int | None = None, **kw: Any
) -> list[ServerSentEvent]:
    events: list[ServerSentEvent] = []
    with connect_sse(c, method, url, **kw) as source:
        source.response.raise_for_status()
        for event in source.iter_sse():
            events.append(event)
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


def _body() -> dict[str, str]:
    return {"message": QUESTION, "user_id": f"bench-runs-{uuid.uuid4().hex[:10]}"}


def _alim(work: Path, name: str, chat: Server, **env: str) -> Server:
    return alim_server(
        work,
        name,
        hashing=True,
        ALIM_LLM_PROVIDER="openai",
        ALIM_OPENAI_API_KEY="bench",
        ALIM_OPENAI_BASE_URL=f"{chat.base_url}/v1",
        **env,
    ).start()


def _cost(work: Path, chat: Server, turns: int, logged: bool) -> dict[str, Any]:
    name = f"alim-runs-{'log' if logged else 'nolog'}"
    srv = _alim(work, name, chat, ALIM_RUN_EVENT_LOG=str(logged).lower())
    try:
        with httpx.Client(base_url=srv.base_url, headers=ALIM_HEADERS, timeout=60) as c:
            for _ in range(3):  # warm-up: lazy imports, caches
                _stream(c, "POST", "/api/v1/graph/stream", json=_body())
            cpu0 = srv.cpu()
            durations: list[float] = []
            events = 0
            for _ in range(turns):
                t0 = time.perf_counter()
                got = _stream(c, "POST", "/api/v1/graph/stream", json=_body())
                durations.append((time.perf_counter() - t0) * 1000)
                events += len(got)
            cpu = srv.cpu() - cpu0
    finally:
        srv.stop()
    return {
        "event_log": logged,
        "turns": turns,
        "events_per_stream": round(events / turns, 1),
        "stream_p50_ms": pct(durations, 50, scale=1.0),
        "stream_p90_ms": pct(durations, 90, scale=1.0),
        "server_cpu_ms_per_turn": round(cpu * 1000 / turns, 2),
    }


def _chat_server(work: Path, name: str, delay: float = 0.0) -> Server:
    def argv(port: int) -> list[str]:
        app = "bench.chat_app:app"
        return [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]

    env = clean_env(BENCH_CHAT_CHUNKS="200", BENCH_CHAT_DELAY=str(delay))
    return _server(work, name, argv, env, work, "/health").start()


def _replay(work: Path, chat: Server, replays: int) -> dict[str, Any]:
    srv = _alim(work, "alim-runs-replay", chat)
    try:
        with httpx.Client(base_url=srv.base_url, headers=ALIM_HEADERS, timeout=60) as c:
            body = _body()
            events = _stream(c, "POST", "/api/v1/graph/stream", json=body)
            run_id = json.loads(events[0].data)["run_id"]
            url = f"/api/v1/runs/{run_id}/stream"
            params = {"user_id": body["user_id"], "after": 0}
            _stream(c, "GET", url, params=params)  # warm-up
            times: list[float] = []
            for _ in range(replays):
                t0 = time.perf_counter()
                again = _stream(c, "GET", url, params=params)
                times.append((time.perf_counter() - t0) * 1000)
            same = [(e.id, e.event, e.data) for e in again] == [
                (e.id, e.event, e.data) for e in events
            ]
    finally:
        srv.stop()
    return {
        "events": len(events),
        "replays": replays,
        "identical": same,
        "p50_ms": pct(times, 50, scale=1.0),
        "p90_ms": pct(times, 90, scale=1.0),
    }


def _cuts(work: Path, chat: Server, count: int, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    srv = _alim(work, "alim-runs-cuts", chat)
    survived = 0
    failures: list[str] = []
    try:
        with httpx.Client(base_url=srv.base_url, headers=ALIM_HEADERS, timeout=60) as c:
            whole = _stream(c, "POST", "/api/v1/graph/stream", json=_body())
            for _ in range(count):
                body = _body()
                cut = rng.randint(1, len(whole) - 1)
                first = _stream(c, "POST", "/api/v1/graph/stream", stop_after=cut, json=body)
                run_id = json.loads(first[0].data)["run_id"]
                rest = _stream(
                    c,
                    "GET",
                    f"/api/v1/runs/{run_id}/stream",
                    params={"user_id": body["user_id"]},
                    headers={"Last-Event-ID": first[-1].id},
                )
                events = first + rest
                stored = c.get(f"/api/v1/runs/{run_id}", params={"user_id": body["user_id"]})
                result = stored.json().get("result") or {}
                text = "".join(e.data for e in events if e.event == "token")
                ok = (
                    [e.id for e in events] == [f"{run_id}:{n}" for n in range(1, len(events) + 1)]
                    and events[-1].event == "done"
                    and text == result.get("response")
                )
                survived += ok
                if not ok and len(failures) < 5:
                    failures.append(f"cut after {cut}: {[e.event for e in events][-3:]}")
    finally:
        srv.stop()
    return {"streams": count, "survived": survived, "failures": failures}


def run_runs(
    work: Path, turns: int, replays: int, cuts: int, log: Callable[[str], None]
) -> dict[str, Any]:
    chat = _chat_server(work, "chat")
    slow = _chat_server(work, "chat-slow", delay=0.005)
    try:
        return _measure(work, chat, slow, turns, replays, cuts, log)
    finally:
        chat.stop()
        slow.stop()


def _measure(
    work: Path,
    chat: Server,
    slow: Server,
    turns: int,
    replays: int,
    cuts: int,
    log: Callable[[str], None],
) -> dict[str, Any]:
    out: dict[str, Any] = {"cost": [_cost(work, chat, turns, logged) for logged in (False, True)]}
    without, with_log = out["cost"]
    out["cpu_overhead"] = round(
        with_log["server_cpu_ms_per_turn"] / without["server_cpu_ms_per_turn"] - 1, 3
    )
    log(
        f"  event log: CPU/turn {without['server_cpu_ms_per_turn']} → "
        f"{with_log['server_cpu_ms_per_turn']} ms ({out['cpu_overhead']:+.1%}), stream p50 "
        f"{without['stream_p50_ms']} → {with_log['stream_p50_ms']} ms"
    )
    out["replay"] = _replay(work, chat, replays)
    log(f"  replay of a {out['replay']['events']}-event run: p50 {out['replay']['p50_ms']} ms")
    out["cuts"] = _cuts(work, slow, cuts)
    log(f"  cut streams resumed whole: {out['cuts']['survived']}/{out['cuts']['streams']}")
    return out
