"""Typed dependencies: the engine, the key store, the authenticated partner (with scopes) and,
for chat routes, the caller: a server key names its end user in the request, a publishable key's
end user is verified (visitor token or user_hash, `alim.visitors`) and counted per visitor."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from alim.errors import Forbidden, Unauthorized
from alim.keys import KeyStore, Partner
from alim.logs import partner_var
from alim.settings import Settings
from alim.visitors import verify_user_hash, verify_visitor
from api.ratelimit import RateLimiter
from engine import Engine, GraphDeps

M = TypeVar("M", bound=BaseModel)

api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="Your partner API key."
)


# The app's singletons. `async def`: FastAPI runs a plain function dependency in a worker
# thread, one trip between threads per dependency per request.
async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


async def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


async def get_deps(request: Request) -> GraphDeps:
    return request.app.state.deps


async def get_limiter(request: Request) -> RateLimiter:
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
    if partner.public:
        check_origin(request, partner)
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


def check_origin(request: Request, partner: Partner) -> None:
    """A publishable key works only from the pages of its allowed origins (a browser sets
    `Origin` itself; CORS alone would not stop a script elsewhere from reading a response)."""
    origin = request.headers.get("origin")
    if origin is None or origin.lower() not in partner.origins:
        raise Forbidden(
            "this publishable key is not allowed from this origin", code="origin_not_allowed"
        )


def visitor_id(request: Request, partner: Partner, settings: Settings) -> str:
    """The verified end user of a publishable key's request."""
    token = request.headers.get("x-visitor-token")
    if token:
        return verify_visitor(
            settings.visitor_secret.get_secret_value(),
            partner.name,
            token,
            time.time(),
            settings.visitor_token_days * 86_400,
        )
    user, given = request.headers.get("x-user-id"), request.headers.get("x-user-hash")
    if user and given:
        return verify_user_hash(partner.identity_secret, user, given)
    raise Unauthorized(
        "a publishable key needs X-Visitor-Token, or X-User-Id with X-User-Hash",
        code="visitor_identity_required",
    )


@dataclass(frozen=True)
class Caller:
    """Who runs a chat request: the partner and, for a publishable key, its verified user."""

    partner: Partner
    verified_user: str | None = None

    def user(self, requested: str) -> str:
        """The end user the request acts for: a server key's own word, or the verified one
        (a browser's raw `user_id` is never trusted)."""
        return self.verified_user if self.verified_user is not None else requested

    def bind(self, body: M) -> M:
        """`body` with its `user_id` replaced by the verified user, if any."""
        if self.verified_user is None:
            return body
        return body.model_copy(update={"user_id": self.verified_user})


async def chat_caller(
    request: Request,
    partner: Annotated[Partner, Depends(authenticate)],
    settings: SettingsDep,
    limiter: LimiterDep,
) -> Caller:
    if partner.allows("chat"):
        return Caller(partner)
    if not partner.public:
        raise Forbidden("this key lacks the 'chat' scope")
    user = visitor_id(request, partner, settings)
    await limiter.check_visitor(request, partner, user, settings.rate_limit_per_visitor)
    return Caller(partner, user)


ChatCaller = Annotated[Caller, Depends(chat_caller)]
"""Chat routes that a publishable key may use too (its own visitor's turns and threads)."""
ChatPartner = Annotated[Partner, Depends(require("chat"))]
AgentPartner = Annotated[Partner, Depends(require("agent"))]
AdminPartner = Annotated[Partner, Depends(require("admin"))]
