"""Pure ASGI middleware: request ids, body size limit, security headers."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any

from alim.logs import request_id_var
from alim.metrics import Metrics

Scope = dict[str, Any]
API_PREFIX = "/api/v1"
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
"""A JSON string escape for NUL (`\u0000`), not an escaped backslash followed by "u0000"."""


def _json(headers: dict[bytes, bytes]) -> bool:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower().endswith(b"json")


class RequestContextMiddleware:
    """Every response carries `X-Request-ID` (the caller's, if well-formed) and security headers;
    bodies larger than `max_body` get 413 `payload_too_large`, and bodies that stop arriving for
    `body_timeout` seconds get 408 `request_timeout`, before any handler runs (a client
    that sends half a body and waits holds no handler and no database connection for long)."""

    def __init__(
        self,
        app: Any,
        max_body: int,
        upload_paths: dict[str, int] | None = None,
        metrics: Metrics | None = None,
        body_timeout: float = 30.0,
    ):
        self.app = app
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.upload_paths = upload_paths or {}
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.metrics is None:
            await self._call(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observe(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self._call(scope, receive, observe)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template.startswith("/") and scope["path"].startswith(API_PREFIX + "/"):
                template = API_PREFIX + template  # routes of included routers are relative
            self.metrics.http_latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )

    async def _call(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        request_id_var.set(request_id)

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"x-request-id", request_id.encode()), *SECURITY_HEADERS]
                limits = scope["state"].get("ratelimit")
                if limits is not None:
                    limit, remaining, reset = limits
                    extra += [
                        (b"x-ratelimit-limit", str(limit).encode()),
                        (b"x-ratelimit-remaining", str(remaining).encode()),
                        (b"x-ratelimit-reset", str(reset).encode()),
                    ]
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in extra if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        limit = self.upload_paths.get(scope.get("path", ""), self.max_body)
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._too_large(send_with_headers, request_id, limit)
            return

        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # Read the (small) body up front, so an oversized chunked body is refused with 413
            # before any handler parses it; then replay it to the app.
            chunks: list[bytes] = []
            size = 0
            try:
                while True:
                    # An idle timeout, not a total one: a slow rural link may take a while to
                    # send a large upload, but a body that stops arriving is given up on.
                    async with asyncio.timeout(self.body_timeout):
                        message = await receive()
                    if message["type"] != "http.request":
                        break
                    chunks.append(message.get("body", b""))
                    size += len(chunks[-1])
                    if size > limit:
                        await self._too_large(send_with_headers, request_id, limit)
                        return
                    if not message.get("more_body", False):
                        break
            except TimeoutError:
                detail = f"the request body stopped arriving for {self.body_timeout:g} s"
                await self._refuse(send_with_headers, request_id, 408, "request_timeout", detail)
                return
            body = b"".join(chunks)
            if _json(headers) and _NUL_ESCAPE.search(body):
                # One rule for every text field of every JSON body (messages, replies, comments,
                # URLs, instructions, articles): PostgreSQL cannot store NUL, and no text needs it.
                await self._refuse(
                    send_with_headers,
                    request_id,
                    422,
                    "invalid_characters",
                    "a text field contains a NUL character",
                )
                return
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _too_large(self, send: Any, request_id: str, limit: int) -> None:
        detail = f"request body larger than {limit} bytes"
        await self._refuse(send, request_id, 413, "payload_too_large", detail)

    @staticmethod
    async def _refuse(send: Any, request_id: str, status: int, code: str, detail: str) -> None:
        body = json.dumps({"detail": detail, "code": code, "request_id": request_id}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
