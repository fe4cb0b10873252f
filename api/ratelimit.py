"""Per-partner-key rate limits: requests per minute (a sliding one-minute window: the requests
of the last 60 seconds, so no burst of twice the limit across a minute boundary) and concurrent
streams, and for publishable keys also requests per minute per visitor. In memory by default;
with `ALIM_REDIS_URL` the counters live in Redis (a sorted set of request times per key, updated
atomically by a script), so the limits hold across replicas.

Every authenticated response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset` (Unix time the oldest counted request leaves the window); over the limit:
429 `rate_limited` with `Retry-After`. Refused requests are not counted.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request

from alim.errors import RateLimited
from alim.keys import Partner

WINDOW = 60


class MemoryCounters:
    def __init__(self) -> None:
        self._logs: dict[str, deque[float]] = {}
        self._streams: dict[str, int] = {}

    async def hit(self, key: str, now: float, limit: int) -> tuple[bool, int, float]:
        """Count a request at `now` if fewer than `limit` came in the last WINDOW seconds:
        (counted, requests in the window, time of the oldest of them)."""
        log = self._logs.setdefault(key, deque())
        while log and log[0] <= now - WINDOW:
            log.popleft()
        counted = len(log) < limit
        if counted:
            log.append(now)
        if len(self._logs) > 100_000:  # forget keys idle for a whole window
            self._logs = {k: v for k, v in self._logs.items() if v and v[-1] > now - WINDOW}
        return counted, len(log), log[0] if log else now

    async def stream_enter(self, key: str, limit: int) -> bool:
        if self._streams.get(key, 0) >= limit:
            return False
        self._streams[key] = self._streams.get(key, 0) + 1
        return True

    async def stream_exit(self, key: str) -> None:
        self._streams[key] = max(0, self._streams.get(key, 0) - 1)


_SLIDING_WINDOW = """
local key, now, window, limit = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local counted = 0
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  count = count + 1
  counted = 1
end
redis.call('EXPIRE', key, window * 2)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {counted, count, oldest[2] or ARGV[1]}
"""
"""One request against a key's sliding window, atomically (the same rule as MemoryCounters)."""


class RedisCounters:
    """Sliding-window request logs and a stream gauge in Redis (gauges expire as a safety net
    if a replica dies holding slots)."""

    GAUGE_TTL = 3600

    def __init__(self, url: str):
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._hit: Any = None

    async def hit(self, key: str, now: float, limit: int) -> tuple[bool, int, float]:
        if self._hit is None:
            self._hit = self.redis.register_script(_SLIDING_WINDOW)
        counted, count, oldest = await self._hit(
            keys=[f"alim:rl:{key}"], args=[repr(now), WINDOW, limit, uuid.uuid4().hex]
        )
        return bool(int(counted)), int(count), float(oldest)

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
        counted, count, oldest = await self.counters.hit(partner.key_id, now, limit)
        reset = math.ceil(oldest + WINDOW)
        request.state.ratelimit = (limit, max(0, limit - count), reset)
        if not counted:
            self._refused("requests")
            raise RateLimited(
                f"more than {limit} requests per minute for this key",
                retry_after=max(1, math.ceil(oldest + WINDOW - now)),
            )

    async def check_visitor(
        self, request: Request, partner: Partner, user_id: str, limit: int
    ) -> None:
        """The per-visitor limit of a publishable key, counted on top of the key's own."""
        now = time.time()
        counted, count, oldest = await self.counters.hit(
            f"{partner.key_id}:u:{user_id}", now, limit
        )
        request.state.ratelimit = (limit, max(0, limit - count), math.ceil(oldest + WINDOW))
        if not counted:
            self._refused("visitor")
            raise RateLimited(
                f"more than {limit} requests per minute for this visitor",
                retry_after=max(1, math.ceil(oldest + WINDOW - now)),
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
