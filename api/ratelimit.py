"""Per-partner-key rate limits: requests per minute (fixed one-minute windows) and concurrent
streams. In memory by default; with `ALIM_REDIS_URL` the counters live in Redis, so the limits
hold across replicas.

Every authenticated response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (Unix time the window resets); over the limit: 429 `rate_limited` with
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request

from alim.errors import RateLimited
from alim.keys import Partner

WINDOW = 60


class MemoryCounters:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}
        self._streams: dict[str, int] = {}

    async def hit(self, key: str, window: int) -> int:
        start, count = self._windows.get(key, (window, 0))
        count = count + 1 if start == window else 1
        self._windows[key] = (window, count)
        if len(self._windows) > 100_000:  # forget old windows
            self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        return count

    async def stream_enter(self, key: str, limit: int) -> bool:
        if self._streams.get(key, 0) >= limit:
            return False
        self._streams[key] = self._streams.get(key, 0) + 1
        return True

    async def stream_exit(self, key: str) -> None:
        self._streams[key] = max(0, self._streams.get(key, 0) - 1)


class RedisCounters:
    """Fixed-window counters and a stream gauge in Redis (atomic INCR; gauges expire as a
    safety net if a replica dies holding slots)."""

    GAUGE_TTL = 3600

    def __init__(self, url: str):
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    async def hit(self, key: str, window: int) -> int:
        name = f"alim:rl:{key}:{window}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, WINDOW * 2)
            count, _ = await pipe.execute()
        return int(count)

    async def stream_enter(self, key: str, limit: int) -> bool:
        name = f"alim:streams:{key}"
        count = int(await self.redis.incr(name))
        await self.redis.expire(name, self.GAUGE_TTL)
        if count > limit:
            await self.redis.decr(name)
            return False
        return True

    async def stream_exit(self, key: str) -> None:
        await self.redis.decr(f"alim:streams:{key}")

    async def aclose(self) -> None:
        await self.redis.aclose()


class RateLimiter:
    def __init__(self, counters: Any, per_minute: int, max_streams: int, metrics: Any = None):
        self.counters = counters
        self.per_minute = per_minute
        self.max_streams = max_streams
        self.metrics = metrics

    def _refused(self, limit: str) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(limit).inc()

    async def check_request(self, request: Request, partner: Partner) -> None:
        limit = partner.rate_limit_per_minute or self.per_minute
        now = time.time()
        window = int(now // WINDOW)
        count = await self.counters.hit(partner.key_id, window)
        reset = (window + 1) * WINDOW
        request.state.ratelimit = (limit, max(0, limit - count), reset)
        if count > limit:
            self._refused("requests")
            raise RateLimited(
                f"more than {limit} requests per minute for this key",
                retry_after=max(1, math.ceil(reset - now)),
            )

    @asynccontextmanager
    async def stream_slot(self, partner: Partner) -> AsyncIterator[None]:
        limit = partner.max_streams or self.max_streams
        if not await self.counters.stream_enter(partner.key_id, limit):
            self._refused("streams")
            raise RateLimited(f"more than {limit} concurrent streams for this key", retry_after=1)
        try:
            yield
        finally:
            await asyncio.shield(self.counters.stream_exit(partner.key_id))

    async def aclose(self) -> None:
        closer = getattr(self.counters, "aclose", None)
        if closer is not None:
            await closer()
