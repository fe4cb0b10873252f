"""Python client for the ALİM HTTP API: `AlimClient` (sync) and `AsyncAlimClient` (asyncio).

    from alim_client import AlimClient, TokenEvent

    with AlimClient("http://127.0.0.1:8000", api_key="…") as alim:
        result = alim.invoke("Fermada susuzluq var, nə edim?", user_id="farmer-1")
        for event in alim.stream("Sabah Qubada yağış olacaq?", user_id="farmer-1",
                                 thread_id=result.thread_id):
            if isinstance(event, TokenEvent):
                print(event.text, end="")

`stream()` yields the typed events of `alim_client.events` (MetadataEvent, NodeEvent, TokenEvent,
SourcesEvent, ErrorEvent, DoneEvent). 429 and 503 answers are retried (honouring Retry-After, at
most `max_retries` times); other errors raise typed `ApiError` subclasses carrying the stable
`code` and the `request_id`.

Made for bad networks: every POST carries a generated `Idempotency-Key` (the same on each of its
retries), so a retry after a dropped connection never adds a second turn; a stream whose
connection drops reconnects by itself (`GET /runs/{run_id}/stream` with `Last-Event-ID`, at most
`max_retries` times in a row, with backoff), and the caller sees one unbroken event sequence.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

from alim_client.errors import (
    MAX_RETRY_AFTER,
    StreamInterrupted,
    error_of,
    retry_after,
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

API = "/api/v1"
RETRYABLE = frozenset({429, 503})
IDEMPOTENT_POSTS = re.compile(
    r"^/(?:graph/invoke|graph/stream|knowledge|documents|escalations/[^/]+/reply"
    r"|threads/[^/]+/feedback)$"
)
"""POST paths whose server honours Idempotency-Key: safe to resend after a dropped connection."""


def new_key() -> str:
    return f"alim-{uuid.uuid4().hex}"


def _backoff(attempt: int) -> float:
    return min(0.5 * 2**attempt, MAX_RETRY_AFTER)


def _delay(response: httpx.Response, attempt: int) -> float:
    """Retry-After when the server sent one (0 means now), else exponential backoff."""
    after = retry_after(response)
    return after if after is not None else _backoff(attempt)


def _result(response: httpx.Response, key: str | None) -> Any:
    """The JSON body (or its `key` member); an error answer raises its typed ApiError."""
    if response.status_code >= 400:
        raise error_of(response)
    if response.status_code == 204:
        return None
    data = response.json()
    return data[key] if key else data


def parse_event(sse: ServerSentEvent) -> Event:
    """One SSE event of /graph/stream as a typed engine event."""
    if sse.event == "token":
        return TokenEvent(sse.data)
    if sse.event == "node":
        return NodeEvent(sse.data)
    if sse.event == "metadata":
        return MetadataEvent(**json.loads(sse.data))
    if sse.event == "queued":
        return QueuedEvent(**json.loads(sse.data))
    if sse.event == "sources":
        data = json.loads(sse.data)
        known = {f.name for f in fields(SourcesEvent)}
        return SourcesEvent(**{k: v for k, v in data.items() if k in known})
    if sse.event == "error":
        return ErrorEvent(**json.loads(sse.data))
    if sse.event == "done":
        return DoneEvent()
    raise ValueError(f"unknown event {sse.event!r}")


def _turn(result: dict[str, Any]) -> TurnResult:
    known = {f.name for f in fields(TurnResult)}
    return TurnResult(**{k: v for k, v in result.items() if k in known})


class _Resumable:
    """Where a stream stands: the request that opens it, then the run to resume after the last
    event seen. `resume()` names the next request; `see()` notes each event."""

    def __init__(self, body: dict[str, Any]):
        self.body = body
        self.key = new_key()
        self.run_id: str | None = None
        self.last_id: str | None = None

    def request(self) -> tuple[str, str, dict[str, Any]]:
        resume = {"Last-Event-ID": self.last_id} if self.last_id else {}
        if self.run_id is None:
            headers = {"Idempotency-Key": self.key, **resume}
            return "POST", "/graph/stream", {"json": self.body, "headers": headers}
        params = {"user_id": self.body["user_id"]}
        return "GET", f"/runs/{self.run_id}/stream", {"params": params, "headers": resume}

    def see(self, sse: ServerSentEvent) -> Event:
        if sse.id:
            self.last_id = sse.id
        event = parse_event(sse)
        if isinstance(event, MetadataEvent | QueuedEvent):
            self.run_id = event.run_id
        return event

    def lost(self) -> StreamInterrupted:
        return StreamInterrupted(0, "stream_interrupted", "the stream's connection dropped")


def _body(message: str, user_id: str, thread_id: str | None, options: dict[str, Any]) -> dict:
    body: dict[str, Any] = {"message": message, "user_id": user_id, **options}
    if thread_id is not None:
        body["thread_id"] = thread_id
    return body


def _with_key(method: str, path: str, kwargs: dict[str, Any]) -> bool:
    """Give a POST its Idempotency-Key (kept across its retries); whether the request may be
    resent after a dropped connection: GET, PUT and DELETE (the same request twice leaves what
    once does: PUT /assistant replaces every setting) and the POSTs the server deduplicates."""
    if method != "POST":
        return method in ("GET", "PUT", "DELETE")
    headers = dict(kwargs.get("headers") or {})
    headers.setdefault("Idempotency-Key", new_key())
    kwargs["headers"] = headers
    return bool(IDEMPOTENT_POSTS.match(path))


class _Threads:
    def __init__(self, call: Any):
        self._call = call

    def list(self, user_id: str, limit: int = 50, offset: int = 0) -> Any:
        return self._call(
            "GET",
            "/threads",
            params={"user_id": user_id, "limit": limit, "offset": offset},
            key="threads",
        )

    def get(self, thread_id: str, user_id: str) -> Any:
        return self._call("GET", f"/threads/{thread_id}", params={"user_id": user_id})

    def delete(self, thread_id: str, user_id: str) -> Any:
        return self._call("DELETE", f"/threads/{thread_id}", params={"user_id": user_id})

    def feedback(
        self, thread_id: str, user_id: str, run_id: str, score: int, comment: str | None = None
    ) -> Any:
        return self._call(
            "POST",
            f"/threads/{thread_id}/feedback",
            json={"user_id": user_id, "run_id": run_id, "score": score, "comment": comment},
        )


class _Escalations:
    def __init__(self, call: Any):
        self._call = call

    def list(self, status: str | None = "open") -> Any:
        params = {"status": status} if status else {}
        return self._call("GET", "/escalations", params=params, key="escalations")

    def reply(self, escalation_id: str, answer: str, agent_id: str) -> Any:
        return self._call(
            "POST",
            f"/escalations/{escalation_id}/reply",
            json={"answer": answer, "agent_id": agent_id},
        )


class _Knowledge:
    def __init__(self, call: Any):
        self._call = call

    def add(
        self,
        title: str,
        content: str,
        language: str,
        tags: list[str] | None = None,
        topic: str = "",
        *,
        dataset_id: str | None = None,
        external_id: str | None = None,
    ) -> Any:
        """Add an article to a dataset of yours (default: your default dataset)."""
        body: dict[str, Any] = {
            "title": title,
            "content": content,
            "language": language,
            "tags": tags or [],
            "topic": topic,
        }
        if dataset_id is not None:
            body["dataset_id"] = dataset_id
        if external_id is not None:
            body["external_id"] = external_id
        return self._call("POST", "/knowledge", json=body)

    def upload(
        self, path: str | Path, *, title: str | None = None, language: str | None = None
    ) -> Any:
        p = Path(path)
        data = {k: v for k, v in {"title": title, "language": language}.items() if v}
        return self._call("POST", "/knowledge", files={"file": (p.name, p.read_bytes())}, data=data)

    def list(self, limit: int = 50, offset: int = 0) -> Any:
        return self._call("GET", "/knowledge", params={"limit": limit, "offset": offset})

    def get(self, article_id: str) -> Any:
        return self._call("GET", f"/knowledge/{article_id}")

    def delete(self, article_id: str) -> Any:
        return self._call("DELETE", f"/knowledge/{article_id}")


class _Datasets:
    """Your datasets (`bundled`, the shared base, is listed first and read-only)."""

    def __init__(self, call: Any):
        self._call = call

    def create(self, name: str, description: str = "", language: str | None = None) -> Any:
        body: dict[str, Any] = {"name": name, "description": description}
        if language is not None:
            body["language"] = language
        return self._call("POST", "/datasets", json=body)

    def list(self) -> Any:
        return self._call("GET", "/datasets", key="datasets")

    def get(self, dataset_id: str) -> Any:
        return self._call("GET", f"/datasets/{dataset_id}")

    def documents(self, dataset_id: str) -> Any:
        return self._call("GET", f"/datasets/{dataset_id}/documents", key="documents")

    def delete(self, dataset_id: str) -> Any:
        return self._call("DELETE", f"/datasets/{dataset_id}")


class _Documents:
    """Files in your datasets: .md, .txt, .pdf, .docx, .html."""

    def __init__(self, call: Any):
        self._call = call

    def upload(
        self,
        path: str | Path,
        *,
        dataset_id: str | None = None,
        external_id: str | None = None,
        title: str | None = None,
        language: str | None = None,
    ) -> Any:
        p = Path(path)
        form = {
            "dataset_id": dataset_id,
            "external_id": external_id,
            "title": title,
            "language": language,
        }
        data = {k: v for k, v in form.items() if v}
        return self._call("POST", "/documents", files={"file": (p.name, p.read_bytes())}, data=data)

    def get(self, document_id: str) -> Any:
        return self._call("GET", f"/documents/{document_id}")

    def chunk(self, document_id: str, chunk_index: int) -> Any:
        return self._call("GET", f"/documents/{document_id}/chunks/{chunk_index}")

    def delete(self, document_id: str) -> Any:
        return self._call("DELETE", f"/documents/{document_id}")


class _Assistant:
    """Your assistant's settings: what a chat searches when its request names no dataset, and
    its name, instructions, model, escalation threshold, language and region. They apply from
    your next turn."""

    def __init__(self, call: Any):
        self._call = call

    def get(self) -> Any:
        """The settings (the defaults until first saved), with `updated_at`."""
        return self._call("GET", "/assistant")

    def replace(
        self,
        *,
        display_name: str | None = None,
        instructions: str | None = None,
        model: str | None = None,
        escalation_threshold: float | None = None,
        default_language: Literal["auto", "az", "en", "ru"] | None = None,
        default_region: str | None = None,
        dataset_ids: list[str] | None = None,
        include_bundled: bool | None = None,
    ) -> Any:
        """Replace the settings: each one left out goes back to its default (`dataset_ids`: all
        of yours, `[]`: none; `include_bundled`: true). Another partner's dataset id raises
        NotFoundError `dataset_not_found`; an unknown model or region, InvalidRequestError."""
        settings = {
            "display_name": display_name,
            "instructions": instructions,
            "model": model,
            "escalation_threshold": escalation_threshold,
            "default_language": default_language,
            "default_region": default_region,
            "dataset_ids": dataset_ids,
            "include_bundled": include_bundled,
        }
        body = {k: v for k, v in settings.items() if v is not None}
        return self._call("PUT", "/assistant", json=body)


class AlimClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
    ):
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + API,
            headers={"X-API-Key": api_key},
            timeout=timeout,
            transport=transport,
        )
        self.threads = _Threads(self._call)
        self.escalations = _Escalations(self._call)
        self.knowledge = _Knowledge(self._call)
        self.datasets = _Datasets(self._call)
        self.documents = _Documents(self._call)
        self.assistant = _Assistant(self._call)

    def __enter__(self) -> AlimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        safe = _with_key(method, path, kwargs)
        for attempt in range(self.max_retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if not safe or attempt == self.max_retries:
                    raise
                time.sleep(_backoff(attempt))
                continue
            if response.status_code not in RETRYABLE or attempt == self.max_retries:
                break
            time.sleep(_delay(response, attempt))
        return response

    def _call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        return _result(self._send(method, path, **kwargs), key)

    def invoke(
        self, message: str, user_id: str, thread_id: str | None = None, **options: Any
    ) -> TurnResult:
        """One turn; returns the whole answer. Options: language, profile, search_options,
        dataset_id (one of yours or a list), include_bundled."""
        return _turn(
            self._call("POST", "/graph/invoke", json=_body(message, user_id, thread_id, options))
        )

    def stream(
        self, message: str, user_id: str, thread_id: str | None = None, **options: Any
    ) -> Iterator[Event]:
        """One turn as typed events; ends with DoneEvent (a dropped connection is resumed)."""
        state = _Resumable(_body(message, user_id, thread_id, options))
        attempt = 0
        while True:
            method, path, kwargs = state.request()
            try:
                with connect_sse(self._http, method, path, **kwargs) as source:
                    response = source.response
                    if response.status_code in RETRYABLE and attempt < self.max_retries:
                        response.read()
                        time.sleep(_delay(response, attempt))
                        attempt += 1
                        continue
                    if response.status_code >= 400:
                        response.read()
                        raise error_of(response)
                    for sse in source.iter_sse():
                        event = state.see(sse)
                        attempt = 0  # progress: the retry budget is for drops in a row
                        yield event
                        if isinstance(event, DoneEvent):
                            return
            except httpx.TransportError:
                pass  # dropped: resume below
            if attempt >= self.max_retries:
                raise state.lost()
            time.sleep(_backoff(attempt))
            attempt += 1


class AsyncAlimClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        max_retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + API,
            headers={"X-API-Key": api_key},
            timeout=timeout,
            transport=transport,
        )
        # The namespaces build the same requests; here `_call` returns a coroutine.
        self.threads = _Threads(self._call)
        self.escalations = _Escalations(self._call)
        self.knowledge = _Knowledge(self._call)
        self.datasets = _Datasets(self._call)
        self.documents = _Documents(self._call)
        self.assistant = _Assistant(self._call)

    async def __aenter__(self) -> AsyncAlimClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        safe = _with_key(method, path, kwargs)
        for attempt in range(self.max_retries + 1):
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.TransportError:
                if not safe or attempt == self.max_retries:
                    raise
                await asyncio.sleep(_backoff(attempt))
                continue
            if response.status_code not in RETRYABLE or attempt == self.max_retries:
                break
            await asyncio.sleep(_delay(response, attempt))
        return response

    async def _call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> Any:
        return _result(await self._send(method, path, **kwargs), key)

    async def invoke(
        self, message: str, user_id: str, thread_id: str | None = None, **options: Any
    ) -> TurnResult:
        return _turn(
            await self._call(
                "POST", "/graph/invoke", json=_body(message, user_id, thread_id, options)
            )
        )

    async def stream(
        self, message: str, user_id: str, thread_id: str | None = None, **options: Any
    ) -> AsyncIterator[Event]:
        """One turn as typed events; ends with DoneEvent (a dropped connection is resumed)."""
        state = _Resumable(_body(message, user_id, thread_id, options))
        attempt = 0
        while True:
            method, path, kwargs = state.request()
            try:
                async with aconnect_sse(self._http, method, path, **kwargs) as source:
                    response = source.response
                    if response.status_code in RETRYABLE and attempt < self.max_retries:
                        await response.aread()
                        await asyncio.sleep(_delay(response, attempt))
                        attempt += 1
                        continue
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_of(response)
                    async for sse in source.aiter_sse():
                        event = state.see(sse)
                        attempt = 0
                        yield event
                        if isinstance(event, DoneEvent):
                            return
            except httpx.TransportError:
                pass
            if attempt >= self.max_retries:
                raise state.lost()
            await asyncio.sleep(_backoff(attempt))
            attempt += 1
