"""The floor: the least a FastAPI + uvicorn + sse-starlette server can do per request.

`uvicorn bench.floor_app:app` — POST /json answers a constant JSON object; POST /sse streams
`FLOOR_TOKENS` constant `token` events and a `done` event, as ALİM's stream does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

FLOOR_TOKENS = int(os.environ.get("BENCH_FLOOR_TOKENS", "100"))
PING_SECONDS = float(os.environ.get("BENCH_FLOOR_PING", "15"))
ANSWER = {"response": "Salam! Bu sabit cavabdır.", "thread_id": "floor", "model": "floor"}

app = FastAPI(title="bench floor")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/json")
async def constant_json(request: Request) -> dict[str, Any]:
    await request.body()  # read the body like a real endpoint would
    return ANSWER


@app.post("/sse")
async def constant_sse(request: Request) -> EventSourceResponse:
    await request.body()

    async def events() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data='{"thread_id": "floor"}', event="metadata")
        for i in range(FLOOR_TOKENS):
            yield ServerSentEvent(data=f"söz{i} ", event="token")
        yield ServerSentEvent(data="[DONE]", event="done")

    return EventSourceResponse(events(), ping=PING_SECONDS)
