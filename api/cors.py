"""CORS for the configured origins (`ALIM_CORS_ORIGINS`) and for the origins of active
publishable keys (read from the key store, cached a few seconds, so a new key works without a
restart). Browsers only; the `Origin` of a publishable key's request is also checked server-side
(`api.deps.check_origin`)."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

METHODS = ["GET", "POST", "DELETE", "PUT"]
ALLOW_HEADERS = [
    "X-API-Key",
    "Content-Type",
    "X-Request-ID",
    "Idempotency-Key",
    "Last-Event-ID",
    "X-Visitor-Token",
    "X-User-Id",
    "X-User-Hash",
]
EXPOSE_HEADERS = [
    "X-Request-ID",
    "Retry-After",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
    "Idempotent-Replayed",
]

_key_origin = contextvars.ContextVar("alim_key_origin", default=False)


class KeyOriginsCORS(CORSMiddleware):
    """Starlette's CORS, whose allowlist also holds the publishable keys' origins."""

    def __init__(self, app: ASGIApp, allow_origins: Collection[str] = ()) -> None:
        super().__init__(
            app,
            allow_origins=list(allow_origins),
            allow_methods=METHODS,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if origin is None or origin in self.allow_origins:
            await super().__call__(scope, receive, send)
            return
        keys = getattr(scope["app"].state, "keys", None) if "app" in scope else None
        allowed = keys is not None and origin in await keys.public_origins(time.monotonic())
        token = _key_origin.set(allowed)
        try:
            await super().__call__(scope, receive, send)
        finally:
            _key_origin.reset(token)

    def is_allowed_origin(self, origin: str) -> bool:
        return super().is_allowed_origin(origin) or _key_origin.get()
