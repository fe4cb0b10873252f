"""Liveness and readiness (no auth)."""

from __future__ import annotations

import asyncio
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from alim.errors import AlimError, Unauthorized
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])
PLAYGROUND_CSP = (
    "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'"
)


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up."""
    return Health()


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
async def ready(request: Request) -> JSONResponse:
    """Checkpointer, knowledge index and chat model are usable."""
    engine = request.app.state.engine
    deps = request.app.state.deps
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(engine.persistence.ping(), timeout=3)
        checks["checkpointer"] = "ok"
    except (AlimError, TimeoutError):
        checks["checkpointer"] = "unavailable"
    try:
        knowledge = deps.knowledge()
        chunks = len(knowledge.index.chunks) + knowledge.catalog.chunk_count()
        checks["index"] = f"ok ({chunks} chunks)"
    except AlimError as exc:
        checks["index"] = exc.code
    checks["model"] = deps.settings.primary_provider
    ok = checks["checkpointer"] == "ok" and checks["index"].startswith("ok")
    body = Ready(status="ready" if ok else "degraded", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format); with ALIM_METRICS_TOKEN set, only for
    `Authorization: Bearer <token>`."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    token = request.app.state.settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("send the metrics token: Authorization: Bearer <token>")

    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )


@router.get("/playground", include_in_schema=False)
async def playground() -> Response:
    """A single-page chat to try the API in a browser (no build step)."""
    from importlib import resources

    page = (resources.files("api") / "static" / "playground.html").read_text(encoding="utf-8")
    return Response(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": PLAYGROUND_CSP},
    )
