"""One exception hierarchy for ALİM. Each error carries a stable `code` and an HTTP status.

The API maps these to JSON bodies in one place (`api.errors`); the CLI prints `code: message`.
"""

from __future__ import annotations


class AlimError(Exception):
    """Base of every error ALİM raises on purpose."""

    code = "internal_error"
    status = 500

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ConfigError(AlimError):
    """The process is configured in a way that cannot work (refuse to start)."""

    code = "config_error"
    status = 500


class InvalidRequest(AlimError):
    code = "invalid_request"
    status = 422


class Unauthorized(AlimError):
    code = "invalid_api_key"
    status = 401


class Forbidden(AlimError):
    code = "insufficient_scope"
    status = 403


class NotFound(AlimError):
    code = "not_found"
    status = 404


class ThreadBusy(AlimError):
    code = "thread_busy"
    status = 409


class AwaitingHuman(AlimError):
    """The thread waits for an agronomist's reply; new messages are refused until then."""

    code = "awaiting_human"
    status = 409


class Conflict(AlimError):
    code = "conflict"
    status = 409


class RateLimited(AlimError):
    code = "rate_limited"
    status = 429

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(AlimError):
    """Every configured chat model failed (after retries and fallbacks)."""

    code = "provider_unavailable"
    status = 503


class CheckpointerUnavailable(AlimError):
    code = "checkpointer_unavailable"
    status = 503


class IndexError_(AlimError):
    """The knowledge index cannot be used as it is on disk."""

    code = "index_unavailable"
    status = 503


class IndexCorrupt(IndexError_):
    code = "index_corrupt"


class IndexMismatch(IndexError_):
    code = "index_mismatch"


class WeatherUnavailable(AlimError):
    """The forecast service could not be reached or answered with something unusable."""

    code = "weather_unavailable"
    status = 503


class RunTimeout(AlimError):
    """The run took longer than `ALIM_RUN_TIMEOUT`."""

    code = "run_timeout"
    status = 504


class InternalError(AlimError):
    """A bug of ours; the detail names the run so that the logs can be found."""

    code = "internal_error"
    status = 500


def storage_error_types() -> tuple[type[Exception], ...]:
    """Exceptions that mean the conversation store is unreachable (not a bug of ours)."""
    import sqlite3

    import psycopg
    import psycopg_pool

    return (sqlite3.OperationalError, psycopg.OperationalError, psycopg_pool.PoolTimeout)


def storage_error(exc: BaseException) -> bool:
    return isinstance(exc, storage_error_types())
