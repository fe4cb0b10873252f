"""The typed errors of the ALİM API: one class per kind of answer, each carrying the HTTP
status, the API's stable `code`, its `detail` and the `request_id` to quote to support."""

from __future__ import annotations

import httpx

MAX_RETRY_AFTER = 30.0
"""The longest wait a Retry-After header may impose (seconds)."""


class ApiError(Exception):
    """An error answer of the API."""

    def __init__(self, status: int, code: str, detail: str, request_id: str | None = None):
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id


class AuthenticationError(ApiError): ...


class PermissionDeniedError(ApiError): ...


class NotFoundError(ApiError): ...


class ConflictError(ApiError): ...


class InvalidRequestError(ApiError): ...


class RateLimitError(ApiError):
    retry_after: float | None = None


class UnavailableError(ApiError): ...


class StreamInterrupted(ApiError):
    """The stream's connection dropped and could not be resumed within `max_retries`."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitError,
    503: UnavailableError,
}


def error_of(response: httpx.Response) -> ApiError:
    """The typed error of an error answer (its JSON body when it has one)."""
    try:
        body = response.json()
        code, detail = body.get("code", "http_error"), body.get("detail", response.text)
    except (ValueError, AttributeError):
        code, detail = "http_error", response.text
    cls = _BY_STATUS.get(response.status_code, ApiError)
    err = cls(response.status_code, code, str(detail), response.headers.get("x-request-id"))
    if isinstance(err, RateLimitError):
        err.retry_after = retry_after(response)
    return err


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (at most MAX_RETRY_AFTER), or None when absent or not a number."""
    try:
        return min(float(response.headers["retry-after"]), MAX_RETRY_AFTER)
    except (KeyError, ValueError):
        return None
