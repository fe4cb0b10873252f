"""What several browser tests share."""

from __future__ import annotations

from typing import Any

SPLIT_STREAM = [
    "id: r:7\r\nevent: token\r",
    "\ndata: one\r\ndata: \r",
    "\ndata: two\r\n\r",
    "\nid: r:8\r\nevent: done\r\ndata: [DONE]\r\n\r\n",
]
"""An SSE body whose CRLF line ends fall across network chunks, as TCP may deliver them."""
SPLIT_STREAM_EVENTS = [["token", "one\n\ntwo", "r:7"], ["done", "[DONE]", "r:8"]]


def parse_split_stream(page: Any) -> list[list[str]]:
    """The events the page's `sseEvents` parser reads from SPLIT_STREAM, delivered chunk by
    chunk."""
    return page.evaluate(  # type: ignore[no-any-return]
        """async (chunks) => {
            const encoder = new TextEncoder();
            const body = new ReadableStream({ start(c) {
                for (const chunk of chunks) c.enqueue(encoder.encode(chunk));
                c.close();
            } });
            const out = [];
            for await (const ev of sseEvents(new Response(body))) {
                out.push([ev.event, ev.data, ev.id]);
            }
            return out;
        }""",
        SPLIT_STREAM,
    )
