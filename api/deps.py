"""Typed dependencies: the engine, the key store and the authenticated partner (with scopes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from alim.errors import Forbidden, Unauthorized
from alim.keys import KeyStore, Partner
from alim.logs import partner_var
from alim.settings import Settings
from api.ratelimit import RateLimiter
from engine import Engine, GraphDeps

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Your partner API key."
)


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


def get_deps(request: Request) -> GraphDeps:
    return request.app.state.deps


def get_limiter(request: Request) -> RateLimiter:
    return request.app.state.limiter


EngineDep = Annotated[Engine, Depends(get_engine)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
DepsDep = Annotated[GraphDeps, Depends(get_deps)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
KeysDep = Annotated[KeyStore, Depends(get_keys)]


async def authenticate(
    request: Request, keys: KeysDep, api_key: Annotated[str | None, Depends(api_key_header)]
) -> Partner:
    partner = await keys.authenticate(api_key)
    if partner is None:
        raise Unauthorized("missing or unknown X-API-Key")
    request.state.partner = partner.name
    partner_var.set(partner.name)
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:
        await limiter.check_request(request, partner)
    return partner


def require(scope: str) -> Callable[..., Awaitable[Partner]]:
    async def dependency(partner: Annotated[Partner, Depends(authenticate)]) -> Partner:
        if not partner.allows(scope):
            raise Forbidden(f"this key lacks the '{scope}' scope")
        return partner

    return dependency


ChatPartner = Annotated[Partner, Depends(require("chat"))]
AgentPartner = Annotated[Partner, Depends(require("agent"))]
AdminPartner = Annotated[Partner, Depends(require("admin"))]
