"""A multi-process HTTP load generator that stays out of the way of the server it measures.

Each worker process runs one asyncio loop (uvloop when installed) with keep-alive connections
and parses responses with `httptools` (the C parser uvicorn itself uses), so a request costs the
client a few tens of microseconds instead of the ~1 ms of a full-featured client. Worker
processes report their own CPU time, so saturation of the client is visible in the results.

Kinds of request:

- `json`: one POST, timed to the end of the response;
- `sse`: one POST answered with Server-Sent Events; also timed to the first token event, with
  `:` heartbeat comments and token events counted;
- `lg_wait` / `lg_stream`: LangGraph server runs: `POST /threads` (not timed), then
  `POST /threads/{id}/runs/wait` or `/runs/stream` (timed; the first token event is the first
  `messages` event with content).

This module imports no numpy: workers start quickly under `spawn`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httptools


@dataclass
class Job:
    name: str
    port: int
    kind: str  # json | sse | lg_wait | lg_stream
    path: str
    body: dict[str, Any] | None
    requests: int
    concurrency: int
    workers: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    budget_s: float = 120.0
    """No new request starts after this many seconds."""
    token_event: str = "token"
    done_marker: str | None = "[DONE]"
    """SSE data that must arrive for a stream to count as a success (None: the end suffices)."""
    nonce: str = ""
    """Part of every unique request number; set per run by `LoadClient.run`."""
    start_at: float = 0.0
    """Wall-clock time (time.time()) at which every worker starts; set by `run_job`."""


UNIQUE = "{n}"
"""In a job's body, replaced by a tag unique to each request (`<run>.<worker>.<request>`): a
question asked once, so no cache on the server answers it from an earlier request."""


class Failure(Exception):
    pass


# ------------------------------------------------------------------------------ parsing
class SseWatch:
    """Scans an SSE byte stream: heartbeats, token events, time of the first one, errors."""

    __slots__ = (
        "_buf",
        "_current",
        "_lg",
        "_token",
        "done",
        "error",
        "events",
        "first",
        "pings",
        "tokens",
    )

    def __init__(self, token_event: str, langgraph: bool):
        self._buf = b""
        self._current = b""
        self._token = token_event.encode()
        self._lg = langgraph
        self.pings = 0
        self.tokens = 0
        self.first: float | None = None
        self.done = False
        self.error: str | None = None
        self.events: dict[str, int] = {}
        """Events seen, by name (a failure's sample says what a tokenless stream carried)."""

    def _has_content(self, data: bytes) -> bool:
        if not self._lg:
            return True
        try:
            message = json.loads(data)[0]
        except (ValueError, IndexError, KeyError, TypeError):
            return False
        return bool(isinstance(message, dict) and message.get("content"))

    def feed(self, data: bytes) -> None:
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                self._current = b""
            elif line[:1] == b":":
                self.pings += 1
            elif line.startswith(b"event:"):
                self._current = line[6:].strip()
                name = self._current.decode("utf-8", "replace")
                self.events[name] = self.events.get(name, 0) + 1
                if self._current == self._token:
                    self.tokens += 1
            elif line.startswith(b"data:"):
                payload = line[5:].strip()
                if self._current == self._token:
                    if self.first is None and self._has_content(payload):
                        self.first = time.perf_counter()
                elif self._current == b"error":
                    self.error = payload[:200].decode("utf-8", "replace")
                if payload == b"[DONE]":
                    self.done = True


class _Sink:
    __slots__ = ("body", "complete", "sse")

    def __init__(self, sse: SseWatch | None):
        self.sse = sse
        self.body = bytearray()
        self.complete = False

    def on_body(self, data: bytes) -> None:
        if self.sse is not None:
            self.sse.feed(data)
        else:
            self.body.extend(data)

    def on_message_complete(self) -> None:
        self.complete = True


class Conn:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self,
        path: str,
        body: bytes,
        headers: dict[str, str],
        sse: SseWatch | None = None,
    ) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + ("Accept: text/event-stream\r\n" if sse is not None else "")
            + "\r\n"
        )
        self.writer.write(head.encode() + body)
        sink = _Sink(sse)
        parser = httptools.HttpResponseParser(sink)
        while not sink.complete:
            data = await self.reader.read(65536)
            if not data:
                self.close()
                raise Failure("connection closed by the server")
            parser.feed_data(data)
        if not parser.should_keep_alive():
            self.close()
        return parser.get_status_code(), bytes(sink.body)


# ------------------------------------------------------------------------------- one request
async def _lg_thread(conn: Conn, headers: dict[str, str]) -> str:
    status, body = await conn.request("/threads", b"{}", headers)
    if status != 200:
        raise Failure(f"POST /threads: HTTP {status}")
    return str(json.loads(body)["thread_id"])


async def one(job: Job, conn: Conn, body: bytes) -> dict[str, Any]:
    """One timed request; raises Failure (or an OSError, a timeout) when it fails."""
    kind = job.kind
    path = job.path
    if kind.startswith("lg_"):
        thread_id = await _lg_thread(conn, job.headers)
        path = f"/threads/{thread_id}/runs/" + ("wait" if kind == "lg_wait" else "stream")
    sse = SseWatch(job.token_event, kind == "lg_stream") if kind in ("sse", "lg_stream") else None
    t0 = time.perf_counter()
    status, payload = await conn.request(path, body, job.headers, sse)
    t1 = time.perf_counter()
    if status != 200:
        raise Failure(f"HTTP {status}: {payload[:160].decode('utf-8', 'replace')}")
    out: dict[str, Any] = {"latency": t1 - t0}
    if sse is None:
        if kind == "lg_wait" and b'"__error__"' in payload:
            raise Failure(f"run failed: {payload[:160].decode('utf-8', 'replace')}")
        return out
    if sse.error is not None:
        raise Failure(f"error event: {sse.error}")
    if job.done_marker is not None and not sse.done:
        raise Failure("stream ended without its done event")
    if sse.first is None:
        carried = ", ".join(f"{name}×{n}" for name, n in sorted(sse.events.items())) or "none"
        raise Failure(f"stream carried no token event (events: {carried})")
    out.update(ttft=sse.first - t0, pings=sse.pings, tokens=sse.tokens)
    return out


# ------------------------------------------------------------------------------------ worker
def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _worker(job: Job, index: int, share: int, slots: int) -> dict[str, Any]:
    template = json.dumps(job.body or {}, ensure_ascii=False)
    varies = UNIQUE in template
    lat: list[float] = []
    ttft: list[float] = []
    pings: list[int] = []
    tokens: list[int] = []
    errors: list[str] = []
    issued = 0
    conns = [Conn(job.port) for _ in range(slots)]
    for c in conns:  # connect before the start signal: connection set-up is not timed
        try:
            await c.open()
        except OSError as exc:
            errors.append(f"connect: {exc!r}")
    await asyncio.sleep(max(0.0, job.start_at - time.time()))
    cpu0, t_start = _cpu(), time.time()
    stop_issuing = time.monotonic() + job.budget_s

    async def slot(conn: Conn) -> None:
        nonlocal issued
        while issued < share and time.monotonic() < stop_issuing:
            issued += 1
            body = template.replace(UNIQUE, f"{job.nonce}{index}.{issued}") if varies else template
            try:
                r = await asyncio.wait_for(one(job, conn, body.encode()), job.timeout)
            except (Failure, OSError, TimeoutError, httptools.HttpParserError, ValueError) as exc:
                conn.close()
                errors.append(f"{type(exc).__name__}: {exc}"[:240])
                continue
            lat.append(r["latency"])
            if "ttft" in r:
                ttft.append(r["ttft"])
                pings.append(r["pings"])
                tokens.append(r["tokens"])

    await asyncio.gather(*(slot(c) for c in conns))
    t_end, cpu1 = time.time(), _cpu()
    for c in conns:
        c.close()
    return {
        "latency": lat,
        "ttft": ttft,
        "pings": pings,
        "tokens": tokens,
        "errors": errors,
        "not_issued": share - issued,
        "t_start": t_start,
        "t_end": t_end,
        "client_cpu_s": cpu1 - cpu0,
    }


def init_worker() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = 65_536 if hard == resource.RLIM_INFINITY else min(65_536, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def run_worker(job: Job, index: int) -> dict[str, Any]:
    """Entry point of one worker process: its share of the requests and of the concurrency."""
    n = max(1, min(job.workers, job.concurrency))
    share = job.requests // n + (1 if index < job.requests % n else 0)
    slots = job.concurrency // n + (1 if index < job.concurrency % n else 0)
    try:
        import uvloop

        return uvloop.run(_worker(job, index, share, slots))
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(_worker(job, index, share, slots))


def noop(seconds: float = 0.2) -> int:
    time.sleep(seconds)
    return os.getpid()
