"""The load generator's SSE scan: what it counts decides what the benchmark calls a failure."""

from bench.loadgen import SseWatch


def _feed(watch: SseWatch, text: str, pieces: int = 7) -> None:
    data = text.encode()
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):  # split mid-line, as TCP reads do
        watch.feed(data[start : start + step])


def test_alim_stream_counts_tokens_heartbeats_and_done() -> None:
    watch = SseWatch("token", langgraph=False)
    _feed(
        watch,
        ': ping\n\nevent: node\ndata: {"node": "route"}\n\n'
        'event: token\ndata: {"content": "Su"}\n\nevent: token\ndata: {"content": "varın"}\n\n'
        "event: done\ndata: [DONE]\n\n",
    )
    assert (watch.tokens, watch.pings, watch.done) == (2, 1, True)
    assert watch.first is not None
    assert watch.events == {"node": 1, "token": 2, "done": 1}


def test_langgraph_messages_without_content_are_not_a_first_token() -> None:
    # What an escalated run that pauses for an agronomist streams: metadata, no message text.
    watch = SseWatch("messages", langgraph=True)
    _feed(
        watch,
        'event: metadata\ndata: {"run_id": "r1"}\n\n'
        'event: messages\ndata: [{"content": ""}, {"langgraph_node": "generate"}]\n\n',
    )
    assert watch.first is None
    assert watch.events == {"metadata": 1, "messages": 1}
    _feed(watch, 'event: messages\ndata: [{"content": "Su"}, {}]\n\n')
    assert watch.first is not None
