"""A small OpenAI-compatible chat-completions server (streaming), for provider tests.

It answers `POST /v1/chat/completions` (ChatOpenAI) and `POST /openai/v1/chat/completions`
(ChatGroq) with `data: {chat.completion.chunk}` lines and `data: [DONE]`, or with one
`chat.completion` object when the request does not ask to stream. Each request takes the
next behaviour from `script` (the last one repeats): "ok", "500", "429", "hang", "malformed".
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class FakeLLM:
    reply: str = "Suvarmanı səhər tezdən aparın."
    script: list[str] = field(default_factory=lambda: ["ok"])
    requests: list[dict[str, Any]] = field(default_factory=list)
    hang_seconds: float = 30.0

    def behaviour(self) -> str:
        index = min(len(self.requests) - 1, len(self.script) - 1)
        return self.script[index]

    def tokens(self) -> list[str]:
        words = self.reply.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def app(self) -> Starlette:
        async def completions(request: Request) -> Response:
            body = await request.json()
            self.requests.append(body)
            behaviour = self.behaviour()
            if behaviour == "500":
                return JSONResponse({"error": {"message": "boom"}}, status_code=500)
            if behaviour == "429":
                return JSONResponse(
                    {"error": {"message": "slow down"}},
                    status_code=429,
                    headers={"retry-after": "0"},
                )
            if behaviour == "hang":
                await asyncio.sleep(self.hang_seconds)
            model = body.get("model", "fake")
            if not body.get("stream") and behaviour != "malformed":
                return JSONResponse(
                    {
                        "id": "chatcmpl-1",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": model,
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": self.reply},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": 11,
                            "completion_tokens": len(self.tokens()),
                            "total_tokens": 11 + len(self.tokens()),
                        },
                    }
                )

            async def stream():  # type: ignore[no-untyped-def]
                created = int(time.time())
                if behaviour == "malformed":
                    yield b"data: {not json\n\n"
                    return
                for n, token in enumerate(self.tokens()):
                    delta = (
                        {"role": "assistant", "content": token} if n == 0 else {"content": token}
                    )
                    chunk = {
                        "id": "chatcmpl-1",
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                    }
                    yield f"data: {json.dumps(chunk)}\n\n".encode()
                final = {
                    "id": "chatcmpl-1",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                    "usage": {
                        "prompt_tokens": 11,
                        "completion_tokens": len(self.tokens()),
                        "total_tokens": 11 + len(self.tokens()),
                    },
                }
                yield f"data: {json.dumps(final)}\n\n".encode()
                yield b"data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        return Starlette(
            routes=[
                Route("/v1/chat/completions", completions, methods=["POST"]),
                Route("/openai/v1/chat/completions", completions, methods=["POST"]),
            ]
        )
