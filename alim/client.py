"""The Python client, kept importable as `alim.client`: it lives in the slim `alim-client`
distribution (clients/python, package `alim_client`), which partner apps install on its own."""

from alim_client import (
    AlimClient,
    ApiError,
    AsyncAlimClient,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterrupted,
    UnavailableError,
    parse_event,
)

__all__ = [
    "AlimClient",
    "ApiError",
    "AsyncAlimClient",
    "AuthenticationError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "StreamInterrupted",
    "UnavailableError",
    "parse_event",
]
