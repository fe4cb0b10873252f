"""ALİM API client for partner apps: `AlimClient` (sync) and `AsyncAlimClient` (asyncio).

    from alim_client import AlimClient, TokenEvent

    with AlimClient("http://127.0.0.1:8000", api_key="…") as alim:
        for event in alim.stream("Sabah Qubada yağış olacaq?", user_id="farmer-1"):
            if isinstance(event, TokenEvent):
                print(event.text, end="")

Depends on httpx and httpx-sse only; see `alim_client.client` for retries and resumable streams.
"""

from alim_client.client import AlimClient, AsyncAlimClient, parse_event
from alim_client.errors import (
    ApiError,
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamInterrupted,
    UnavailableError,
)
from alim_client.events import (
    DoneEvent,
    ErrorEvent,
    Event,
    MetadataEvent,
    NodeEvent,
    QueuedEvent,
    SourcesEvent,
    TokenEvent,
    TurnResult,
)

__version__ = "0.1.0"

__all__ = [
    "AlimClient",
    "ApiError",
    "AsyncAlimClient",
    "AuthenticationError",
    "ConflictError",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "InvalidRequestError",
    "MetadataEvent",
    "NodeEvent",
    "NotFoundError",
    "PermissionDeniedError",
    "QueuedEvent",
    "RateLimitError",
    "SourcesEvent",
    "StreamInterrupted",
    "TokenEvent",
    "TurnResult",
    "UnavailableError",
    "parse_event",
]
