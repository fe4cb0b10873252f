"""A constant OpenAI-compatible chat endpoint for the benchmarks: every streamed answer is
`BENCH_CHAT_CHUNKS` one-word chunks, `BENCH_CHAT_DELAY` seconds apart (`uvicorn
bench.chat_app:app`), so a run has a known number of events and length."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNKS = int(os.environ.get("BENCH_CHAT_CHUNKS", "200"))
DELAY = float(os.environ.get("BENCH_CHAT_DELAY", "0"))
WORDS = ("Suvarmanı", "səhər", "tezdən", "aparın,", "torpağı", "malçla", "örtün.")


def _chunk(model: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


async def completions(request: Request) -> Response:
    body = await request.json()
    model = body.get("model", "bench")
    words = [WORDS[n % len(WORDS)] for n in range(CHUNKS)]
    if not body.get("stream"):
        message = {"role": "assistant", "content": " ".join(words)}
        return JSONResponse(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            }
        )

    async def stream() -> AsyncIterator[bytes]:
        for n, word in enumerate(words):
            if DELAY:
                await asyncio.sleep(DELAY)
            yield _chunk(model, {"content": word if n == 0 else " " + word})
        yield _chunk(model, {}, "stop")
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/health", health),
    ]
)
