"""The FastAPI app factory. Resources (checkpointer, database, index, models) are opened in the
lifespan, never at import time: `uvicorn api.app:create_app --factory`, or `alim serve`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from alim import __version__
from alim.keys import KeyStore, check_production_keys
from alim.llm import ModelChain
from alim.metrics import Metrics
from alim.netguard import networks
from alim.settings import Settings, get_settings
from alim.tasks import stop_tasks
from alim.webhook_breaker import Breaker
from alim.webhooks import Dispatcher
from api.cors import KeyOriginsCORS
from api.errors import install_error_handlers
from api.middleware import RequestContextMiddleware
from api.ratelimit import MemoryCounters, RateLimiter, RedisCounters
from api.routes import (
    analytics,
    assistant,
    datasets,
    documents,
    graph,
    handoff,
    health,
    inbox,
    inbox_page,
    knowledge,
    runs,
    threads,
    widget,
)
from api.schemas import COMMON_ERRORS
from engine import Engine, GraphDeps

log = logging.getLogger("alim.api")

DESCRIPTION = """ALİM answers farmers' questions (Azerbaijani, English, Russian) from a curated
agronomy knowledge base and weather forecasts, and hands low-confidence questions to a human.

Authenticate with the `X-API-Key` header. Every error has the body
`{"detail": …, "code": …, "request_id": …}`; every response carries `X-Request-ID`."""


def make_limiter(settings: Settings) -> RateLimiter:
    counters: Any = RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
    return RateLimiter(counters, settings.rate_limit_per_minute, settings.max_streams_per_key)


def start_retention(settings: Settings, engine: Engine) -> asyncio.Task[None] | None:
    """The periodic retention task (idle threads deleted, old checkpoints pruned)."""
    if settings.retention_idle_days is None:
        return None

    async def loop() -> None:
        from alim.retention import prune

        while True:
            try:
                await prune(engine.persistence, idle_days=settings.retention_idle_days)
            except Exception:  # retention must never take the server down; retry next time
                log.exception("retention run failed")
            await asyncio.sleep(settings.retention_interval_seconds)

    return asyncio.create_task(loop(), name="alim-retention")


def create_app(settings: Settings | None = None, deps: GraphDeps | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        graph_deps = deps or GraphDeps(settings)
        graph_deps.warm_up()
        ModelChain.for_choice("", settings, graph_deps.models)  # a bad model config fails here
        async with Engine.open(settings, graph_deps) as engine:
            keys = KeyStore(engine.persistence.db, settings)
            await check_production_keys(settings, keys)
            engine.metrics = app.state.metrics
            app.state.engine = engine
            app.state.keys = keys
            app.state.deps = graph_deps
            app.state.limiter = make_limiter(settings)
            app.state.limiter.metrics = app.state.metrics
            dispatcher = Dispatcher(
                engine.persistence.db,
                allowed=networks(settings.webhook_allowed_networks),
                breaker=Breaker.of(settings),
            )
            # Half turns left by a crash or a failed bookkeeping step, before serving.
            await engine.reconciler.sweep_logged()
            background = [
                asyncio.create_task(dispatcher.run_forever(), name="alim-webhooks"),
                asyncio.create_task(engine.reconciler.forever(), name="alim-reconcile"),
            ]
            if engine.knowledge is not None:
                background.append(
                    asyncio.create_task(
                        engine.knowledge.follow(settings.knowledge_poll_seconds),
                        name="alim-knowledge-sync",
                    )
                )
            engine.runs.start()
            retention = start_retention(settings, engine)
            if retention is not None:
                background.append(retention)
            log.info(
                "ALİM ready (%s checkpoints, model %s)",
                engine.persistence.kind,
                settings.primary_provider,
            )
            try:
                yield
            finally:
                # The streams had the grace period (sse-starlette); runs nobody follows get a
                # second more, then end with `server_shutting_down` in their log.
                await engine.runs.aclose(grace=1.0)
                await stop_tasks(background)
                await dispatcher.aclose()
                await app.state.limiter.aclose()

    app = FastAPI(
        title="ALİM API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = Metrics()
    install_error_handlers(app)
    app.add_middleware(KeyOriginsCORS, allow_origins=settings.cors_origins)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=settings.max_body_bytes,
        body_timeout=settings.body_read_timeout,
        upload_paths={
            "/api/v1/knowledge": settings.max_upload_bytes,
            "/api/v1/documents": settings.max_upload_bytes,
        },
        metrics=app.state.metrics,
    )
    app.include_router(health.router)
    app.include_router(inbox_page.router)
    app.include_router(widget.script_router)
    routers = (
        graph.router,
        runs.router,
        threads.router,
        handoff.router,
        inbox.router,
        analytics.router,
        knowledge.router,
        datasets.router,
        documents.router,
        assistant.router,
        widget.router,
    )
    for router in routers:
        app.include_router(router, prefix="/api/v1", responses=COMMON_ERRORS)
    return app


def app_factory() -> Any:  # pragma: no cover - convenience for `uvicorn api.app:app_factory`
    return create_app()


def served_app() -> FastAPI:
    """`alim serve`'s factory: logging configured in the process that serves (each worker is
    a process of its own), then the app."""
    from alim.logs import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings)
