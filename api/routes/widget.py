"""The website widget: its script (`GET /widget.js`, cacheable, no CDN) and the anonymous
visitor tokens it asks for with a publishable key (`POST /api/v1/widget/visitor`)."""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from alim.errors import ConfigError, Forbidden
from alim.keys import Partner
from alim.settings import DEV_VISITOR_SECRET
from alim.visitors import issue_visitor
from api.deps import SettingsDep, authenticate

script_router = APIRouter(tags=["widget"], include_in_schema=False)
router = APIRouter(prefix="/widget", tags=["widget"])


@lru_cache(maxsize=1)
def widget_script() -> tuple[bytes, str]:
    """The script and its ETag (read on first use, not at import)."""
    body = (resources.files("api") / "static" / "widget.js").read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@script_router.get("/widget.js")
async def script(request: Request) -> Response:
    """The embeddable chat widget; partners include it with `<script src=… async>`."""
    body, etag = widget_script()
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=3600",
        "Cross-Origin-Resource-Policy": "cross-origin",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


class VisitorOut(BaseModel):
    visitor_token: str = Field(description="Send it as `X-Visitor-Token`; keep it (localStorage).")
    user_id: str = Field(description="The visitor's user id, bound to the token.")


@router.post("/visitor", response_model=VisitorOut, status_code=201)
async def new_visitor(
    partner: Annotated[Partner, Depends(authenticate)], settings: SettingsDep
) -> VisitorOut:
    """A new anonymous visitor for a publishable key (scope `public`), from one of its origins.
    Its threads are reachable only with the token."""
    if not partner.public:
        raise Forbidden("visitor tokens are for publishable keys (scope 'public')")
    secret = settings.visitor_secret.get_secret_value()
    if settings.env == "production" and secret == DEV_VISITOR_SECRET:
        raise ConfigError("ALIM_VISITOR_SECRET is the development default; set it")
    token, user_id = issue_visitor(secret, partner.name, time.time())
    return VisitorOut(visitor_token=token, user_id=user_id)
