"""The agronomists' inbox page (`/inbox`): one HTML page, its script and its style, all served
from the package (no CDN, works offline), under a CSP that allows only this origin's own files:
no inline script at all, so text a farmer wrote can never run as code."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(tags=["inbox"], include_in_schema=False)
INBOX_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
FILES = {
    "inbox.html": "text/html; charset=utf-8",
    "inbox.js": "text/javascript; charset=utf-8",
    "inbox.css": "text/css; charset=utf-8",
}


def _static(name: str) -> Response:
    body = (resources.files("api") / "static" / name).read_text(encoding="utf-8")
    return Response(
        body,
        media_type=FILES[name],
        headers={
            "Content-Security-Policy": INBOX_CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@router.get("/inbox")
async def inbox() -> Response:
    """The page: sign in with an agent key, then the queue and one escalation at a time."""
    return _static("inbox.html")


@router.get("/inbox/inbox.js")
async def script() -> Response:
    return _static("inbox.js")


@router.get("/inbox/inbox.css")
async def style() -> Response:
    return _static("inbox.css")
