"""The slim Python client as a partner installs it: `pip install ./clients/python` into a fresh
virtual environment (nothing of the server stack), then a real invoke and stream against a real
`alim serve` on 127.0.0.1, run by that environment's Python."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alim.offline import OFFLINE_MODEL_NAME
from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
INSTALL_TIMEOUT = 240

PARTNER_SCRIPT = """
import importlib.util, json, os
from alim_client import AlimClient, MetadataEvent, NotFoundError, TokenEvent

out = {"server_stack": [m for m in ("alim", "langgraph", "fastapi", "faiss")
                        if importlib.util.find_spec(m)]}
with AlimClient(os.environ["ALIM_URL"], os.environ["ALIM_KEY"], timeout=60) as alim:
    turn = alim.invoke("Quraqlıq zamanı pomidoru necə suvarım?", user_id="pkg-user")
    out["invoke"] = {"thread_id": turn.thread_id, "model": turn.model, "route": turn.route,
                     "answer": turn.response, "sources": [s["id"] for s in turn.sources]}
    events = list(alim.stream("How do I protect wheat from frost?", user_id="pkg-user",
                              thread_id=turn.thread_id, language="en"))
    out["stream"] = [type(e).__name__ for e in events]
    out["streamed"] = "".join(e.text for e in events if isinstance(e, TokenEvent))
    out["stream_thread"] = events[0].thread_id if isinstance(events[0], MetadataEvent) else None
    history = alim.threads.get(turn.thread_id, "pkg-user")["messages"]
    out["history"] = [m["content"] for m in history]
    try:
        alim.threads.get(turn.thread_id, "someone-else")
    except NotFoundError as err:
        out["stranger"] = [err.status, err.code, bool(err.request_id)]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only `alim-client` (and its dependencies) installed."""
    venv = tmp_path_factory.mktemp("partner") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-input", str(CLIENT)],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT,
        env=env,
        cwd=venv.parent,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(tmp_path_factory.mktemp("pkg-server")) as base_url:
        yield base_url


def test_the_installed_package_invokes_and_streams_against_a_real_server(
    client_venv: Path, server: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(ALIM_URL=server, ALIM_KEY=DEV_API_KEY)

    # Run outside the repository, so nothing of it is importable by accident.
    ran = subprocess.run(
        [str(client_venv), "-c", PARTNER_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=client_venv.parents[2],
    )

    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["server_stack"] == []
    assert out["invoke"]["model"] == OFFLINE_MODEL_NAME
    assert out["invoke"]["route"] == "agronomy"
    assert out["invoke"]["answer"].strip()
    assert out["invoke"]["sources"]
    events = out["stream"]
    assert events[0] == "MetadataEvent"
    assert events[-2:] == ["SourcesEvent", "DoneEvent"]
    assert "NodeEvent" in events and "TokenEvent" in events
    assert out["stream_thread"] == out["invoke"]["thread_id"]
    assert out["streamed"].strip()
    assert out["history"] == [
        "Quraqlıq zamanı pomidoru necə suvarım?",
        out["invoke"]["answer"],
        "How do I protect wheat from frost?",
        out["streamed"],
    ]
    assert out["stranger"] == [404, "thread_not_found", True]
