"""`alim serve` as a real process that reliability tests can kill, stop and restart.

`tests.integration.server.running_server` only yields a URL; these tests need the process itself
(SIGKILL, SIGTERM, exit code, RSS) and restarts on the same data. The environment and the health
wait are reused from that helper.

    with ServerProcess(tmp_path, ALIM_OFFLINE_DELAY="0.05") as server:
        server.base_url, server.pid, server.rss_kb()
        server.kill()        # SIGKILL, reaped
        server.start()       # same data directory and environment, new port
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from alim.settings import DEV_API_KEY
from tests.integration.server import _output, _wait_healthy, server_env
from tests.support.servers import free_port

HEADERS = {"X-API-Key": DEV_API_KEY}
STREAM = "/api/v1/graph/stream"
INVOKE = "/api/v1/graph/invoke"
DROUGHT_QUESTION = "Quraqlıq zamanı pomidoru necə suvarım?"  # a long, multi-line answer
SHORT_QUESTION = "Salam, əkinçiliklə bağlı sualım var."
STOP_TIMEOUT = 20.0


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def body(message: str, user_id: str, thread_id: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"message": message, "user_id": user_id}
    if thread_id is not None:
        payload["thread_id"] = thread_id
    return payload


def client(base_url: str, timeout: float = 60.0) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=HEADERS, timeout=timeout, trust_env=False)


def history(c: httpx.Client, thread_id: str, user_id: str) -> list[dict[str, Any]]:
    r = c.get(f"/api/v1/threads/{thread_id}", params={"user_id": user_id})
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


def stream_events(
    c: httpx.Client, message: str, user_id: str, thread_id: str | None = None
) -> list[ServerSentEvent]:
    """One whole stream, as parsed SSE events."""
    with connect_sse(c, "POST", STREAM, json=body(message, user_id, thread_id)) as source:
        assert source.response.status_code == 200, source.response.read()
        return list(source.iter_sse())


def answer_of(events: list[ServerSentEvent]) -> str:
    return "".join(e.data for e in events if e.event == "token")


def invoke_when_free(
    c: httpx.Client, message: str, user_id: str, thread_id: str, wait: float = 15.0
) -> tuple[httpx.Response, int]:
    """Invoke, retrying while the thread is busy (409 thread_busy) for up to `wait` s.
    Returns the last response and how many 409s came before it."""
    deadline = time.monotonic() + wait
    busy = 0
    while True:
        r = c.post(INVOKE, json=body(message, user_id, thread_id))
        if r.status_code != 409 or time.monotonic() > deadline:
            return r, busy
        assert r.json()["code"] == "thread_busy", r.text
        busy += 1
        time.sleep(0.25)


class ServerProcess:
    """One `alim serve` process over a fixed data directory and environment."""

    def __init__(self, data_dir: Path, **env: str):
        self.data_dir = data_dir
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log: Path | None = None
        self.logs: list[Path] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> ServerProcess:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.data_dir / f"server-{self.port}.log"
        self.logs.append(self.log)
        command = [sys.executable, "-m", "alim.cli", "serve"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            # cwd is the data directory, so no developer `.env` file is read.
            self.proc = subprocess.Popen(
                command,
                cwd=self.data_dir,
                env=server_env(self.data_dir, **self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_healthy(self.proc, self.base_url, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> int:
        """SIGKILL, then reap; returns the exit status (-9)."""
        proc = self._running()
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM (does not wait)."""
        os.kill(self._running().pid, signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time. Safe to call twice."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self._running().pid

    def rss_kb(self) -> int:
        """VmRSS of the server process, in kB."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS in /proc/{self.pid}/status")

    def output(self) -> str:
        """Everything the server wrote, across restarts."""
        parts = []
        for log in self.logs:
            with contextlib.suppress(OSError):
                parts.append(f"--- {log.name}\n{_output(log)}")
        return "\n".join(parts)

    def _running(self) -> subprocess.Popen[bytes]:
        assert self.proc is not None and self.proc.poll() is None, "server is not running"
        return self.proc
