"""200 concurrent streams held open for ~30 s on one server.

Each stream has its own user and thread. The offline model's delay is computed so that one answer
takes about 30 s: a probe server (same data, no delay) counts the answer's chunks first. Every
stream must end with `sources` then `done`, get `: ping` heartbeats (every 5 s), and the server's
RSS must stay bounded. Figures are printed (run pytest with -s).

httpx-sse drops SSE comments, so the raw lines are read here: lines starting with ':' are counted
as heartbeats, and every line goes through httpx-sse's decoder to rebuild the events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder

from bench.procs import Server
from tests.support import live
from tests.support.alim_serve import new_server, supervised
from tests.support.live import DROUGHT_QUESTION

pytestmark = pytest.mark.slow

STREAMS = 200
TARGET_SECONDS = 30.0
PING_SECONDS = 5
MAX_RSS_GROWTH_MB = 500.0
STREAM_TIMEOUT = 150.0  # one stream, start to end (a hang fails the test, not the run)


@dataclass
class LoadServer:
    server: Server
    chunks: int
    delay: float


@dataclass
class StreamResult:
    index: int
    status: int = 0
    events: list[ServerSentEvent] = field(default_factory=list)
    heartbeats: int = 0
    error: str | None = None
    seconds: float = 0.0

    @property
    def kinds(self) -> list[str]:
        return [e.event for e in self.events]

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.status == 200
            and "error" not in self.kinds
            and self.kinds[-2:] == ["sources", "done"]
        )


@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoadServer]:
    data = tmp_path_factory.mktemp("load")
    with new_server(data) as probe, live.client(probe.base_url) as c:
        events = live.stream_events(c, DROUGHT_QUESTION, live.new_id("probe"))
    chunks = sum(e.event == "token" for e in events)
    assert chunks > 0, events
    delay = TARGET_SECONDS / chunks
    server = new_server(
        data,
        ALIM_OFFLINE_DELAY=f"{delay:.4f}",
        ALIM_SSE_PING_SECONDS=str(PING_SECONDS),
        ALIM_MAX_STREAMS_PER_KEY="1000",
        ALIM_MAX_CONNECTIONS_PER_IP="0",  # 200 streams from one address
        ALIM_RATE_LIMIT_PER_MINUTE="100000",
    )
    with supervised(server):
        server.start()
        yield LoadServer(server, chunks, delay)


async def one_stream(http: httpx.AsyncClient, index: int) -> StreamResult:
    result = StreamResult(index)
    started = time.monotonic()
    payload = live.body(DROUGHT_QUESTION, f"load-user-{index}", f"load-thread-{index}")
    headers = {"Accept": "text/event-stream"}
    try:
        async with asyncio.timeout(STREAM_TIMEOUT):
            async with http.stream("POST", live.STREAM, json=payload, headers=headers) as response:
                result.status = response.status_code
                if response.status_code != 200:
                    result.error = (await response.aread()).decode(errors="replace")[:300]
                    return result
                decoder = SSEDecoder()
                async for line in response.aiter_lines():
                    if line.startswith(":"):
                        result.heartbeats += 1
                    event = decoder.decode(line)
                    if event is not None:
                        result.events.append(event)
    except (httpx.HTTPError, TimeoutError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds = time.monotonic() - started
    return result


async def sample_rss(server: Server, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], await asyncio.to_thread(server.rss))
        await asyncio.sleep(1.0)


@pytest.mark.timeout(300)
async def test_200_concurrent_streams_all_finish_with_heartbeats(load_server: LoadServer) -> None:
    server = load_server.server
    rss_before = server.rss()
    peak = [rss_before]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(server, peak, stop))
    limits = httpx.Limits(max_connections=STREAMS + 50, max_keepalive_connections=STREAMS + 50)
    timeout = httpx.Timeout(60.0, connect=30.0, pool=30.0)
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(
            base_url=server.base_url, headers=live.HEADERS, limits=limits, timeout=timeout
        ) as http:
            results = await asyncio.gather(*(one_stream(http, i) for i in range(STREAMS)))
    finally:
        stop.set()
        await sampler
    wall = time.monotonic() - started
    rss_after = server.rss()

    failed = [r for r in results if not r.ok]
    heartbeats = [r.heartbeats for r in results]
    seconds = sorted(r.seconds for r in results)
    print(
        f"\n[load] {STREAMS} streams, {load_server.chunks} chunks each at "
        f"{load_server.delay:.3f} s/chunk, ping every {PING_SECONDS} s; wall {wall:.1f} s; "
        f"per stream min/median/max {seconds[0]:.1f}/{seconds[len(seconds) // 2]:.1f}/"
        f"{seconds[-1]:.1f} s\n"
        f"[load] ok {STREAMS - len(failed)}, errors {len(failed)}; heartbeats total "
        f"{sum(heartbeats)}, per stream min {min(heartbeats)} max {max(heartbeats)}\n"
        f"[load] server RSS before {rss_before:.1f} MiB, peak {peak[0]:.1f} MiB, "
        f"after {rss_after:.1f} MiB (+{rss_after - rss_before:.1f} MiB)"
    )

    assert not failed, [(r.index, r.status, r.error, r.kinds[-3:]) for r in failed[:10]]
    assert all(r.kinds[0] == "metadata" and r.kinds.count("done") == 1 for r in results)
    assert all(r.events[-1].data == "[DONE]" for r in results)
    assert all(h >= 1 for h in heartbeats), heartbeats
    assert rss_after < rss_before + MAX_RSS_GROWTH_MB
    assert peak[0] < rss_before + MAX_RSS_GROWTH_MB
