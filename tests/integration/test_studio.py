"""LangGraph Studio path: `langgraph dev` serves graphs/studio.py and streams the answer node."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from langgraph_sdk import get_client

from bench.procs import HOST, ROOT, Server
from tests.conftest import REAL_CACHE, UNREACHABLE

pytestmark = pytest.mark.slow


@pytest.fixture
def langgraph_dev(real_deps, tmp_path):  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "ALIM_DATA_DIR": str(tmp_path),
        "ALIM_INDEX_DIR": str(REAL_CACHE / "index"),
        "ALIM_LLM_PROVIDER": "offline",
        "ALIM_WEATHER_BASE_URL": UNREACHABLE,
    }
    cli = str(Path(sys.executable).with_name("langgraph"))

    def argv(port: int) -> list[str]:
        return [cli, "dev", "--no-browser", "--no-reload", "--host", HOST, "--port", str(port)]

    server = Server(
        name="langgraph dev",
        argv=argv,
        env=env,
        cwd=ROOT,
        log_dir=tmp_path,
        health="/ok",
        start_timeout=90.0,
    )
    with server:
        yield server.base_url


async def test_studio_streams_answer_tokens(langgraph_dev: str) -> None:
    client = get_client(url=langgraph_dev)
    thread = await client.threads.create()
    tokens: list[str] = []
    pieces: list[str] = []
    nodes: set[str] = set()
    async for part in client.runs.stream(
        thread["thread_id"],
        "alim",
        input={"messages": [{"role": "user", "content": "Fermada susuzluq var, nə edim?"}]},
        stream_mode=["messages-tuple", "custom"],
    ):
        if part.event == "messages":
            message, metadata = part.data
            nodes.add(metadata.get("langgraph_node"))
            if message.get("content"):
                tokens.append(message["content"])
        elif part.event == "custom":
            pieces.append(part.data["text"])
    assert nodes == {"generate"}, "only the answer node's tokens stream"
    assert len(tokens) > 5
    answer = "".join(tokens)
    assert "Quraqlıq" in answer
    assert "Oflayn rejim" in answer
    assert "".join(pieces) == answer, "the custom mode carries the same answer (the API's tokens)"
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["route"] == "agronomy"
