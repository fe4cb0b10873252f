"""Every error → `{"detail", "code", "request_id"}` with a stable code, mapped in one place."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from alim.errors import AlimError, RateLimited, storage_error, storage_error_types

log = logging.getLogger("alim.api")

_HTTP_CODES = {
    400: "bad_request",
    401: "invalid_api_key",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def error_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"detail": detail, "code": code, "request_id": request_id_of(request)},
        status_code=status,
        headers=headers,
    )


def _validation_detail(exc: RequestValidationError) -> tuple[str, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return "malformed_json", "the body is not valid JSON"
    for e in errors:
        if tuple(e.get("loc", ())) == ("body", "message") and e.get("type") == "string_too_short":
            return "message_empty", "message is empty"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {e.get('msg')}")
    return "validation_error", "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AlimError)
    async def alim_error(request: Request, exc: AlimError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        if exc.status >= 500:
            log.warning("request failed: %s", exc.code)
        return error_response(request, exc.status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        code, detail = _validation_detail(exc)
        return error_response(request, 400 if code == "malformed_json" else 422, code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "json" in request.headers.get("content-type", ""):
            # FastAPI's own 400 for a JSON body it could not decode (invalid UTF-8, nesting
            # too deep for the parser): the same answer as any other malformed JSON.
            return error_response(request, 400, "malformed_json", "the body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(request, exc.status_code, code, str(exc.detail), exc.headers)

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("conversation store unavailable: %s", type(exc).__name__)
        return error_response(
            request, 503, "checkpointer_unavailable", "the conversation store is unavailable"
        )

    for exc_class in storage_error_types():
        app.add_exception_handler(exc_class, store_unavailable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if storage_error(exc):
            return await store_unavailable(request, exc)
        log.exception("unhandled error (request %s)", request_id_of(request))
        return error_response(request, 500, "internal_error", "internal error")
