"""LangGraph Studio path: `langgraph dev` serves graphs/studio.py and streams the answer node."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.conftest import REAL_CACHE
from tests.support.servers import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def langgraph_dev(real_deps, tmp_path):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {
        **os.environ,
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
        "LANGGRAPH_NO_VERSION_CHECK": "true",
        "ALIM_DATA_DIR": str(tmp_path),
        "ALIM_INDEX_DIR": str(REAL_CACHE / "index"),
        "ALIM_LLM_PROVIDER": "offline",
        "ALIM_WEATHER_BASE_URL": "http://127.0.0.1:9/v1",
    }
    cli = Path(sys.executable).with_name("langgraph")
    proc = subprocess.Popen(
        [
            str(cli),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    "langgraph dev exited:\n" + (proc.stdout.read() if proc.stdout else "")
                )
            try:
                if httpx.get(f"{url}/ok", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("langgraph dev did not start")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def test_studio_streams_answer_tokens(langgraph_dev: str) -> None:
    client = get_client(url=langgraph_dev)
    thread = await client.threads.create()
    tokens: list[str] = []
    nodes: set[str] = set()
    async for part in client.runs.stream(
        thread["thread_id"],
        "alim",
        input={"messages": [{"role": "user", "content": "Fermada susuzluq var, nə edim?"}]},
        stream_mode="messages-tuple",
    ):
        if part.event == "messages":
            message, metadata = part.data
            nodes.add(metadata.get("langgraph_node"))
            if message.get("content"):
                tokens.append(message["content"])
    assert nodes == {"generate"}, "only the answer node's tokens stream"
    assert len(tokens) > 5
    answer = "".join(tokens)
    assert "Quraqlıq" in answer
    assert "Oflayn rejim" in answer
    state = await client.threads.get_state(thread["thread_id"])
    assert state["values"]["route"] == "agronomy"
