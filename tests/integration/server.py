"""Run `alim serve` as a real uvicorn process on 127.0.0.1 for integration tests.

    with running_server(tmp_path, ALIM_OFFLINE_DELAY="0.05") as base_url:
        httpx.get(f"{base_url}/health")

The server gets a clean ALIM_* environment: data under `tmp_path`, the small fixture knowledge base
(the real embedder is fast on it), the index under `<tmp_path>/index`, an unreachable weather
service and the offline model; keyword arguments add or override variables. Its stdout and stderr
go to `<tmp_path>/server-<port>.log`, which is quoted when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_KB = ROOT / "tests" / "fixtures" / "kb"
UNREACHABLE_WEATHER = "http://127.0.0.1:9/v1"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0


class ServerStartError(RuntimeError):
    """The server exited or did not answer /health in time; the message holds its output."""


def server_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The subprocess environment: the caller's, minus its ALIM_* settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIM_")}
    pythonpath = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(pythonpath),
            "PYTHONUNBUFFERED": "1",
            "ALIM_DATA_DIR": str(tmp_path),
            "ALIM_KB_DIR": str(FIXTURE_KB),
            "ALIM_INDEX_DIR": str(tmp_path / "index"),
            "ALIM_WEATHER_BASE_URL": UNREACHABLE_WEATHER,
            "ALIM_LLM_PROVIDER": "offline",
        }
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def _output(log: Path) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:  # pragma: no cover - the log is ours
        return f"<could not read {log}: {exc}>"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT)


def _wait_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while True:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"alim serve exited with code {proc.returncode} before answering /health; "
                    f"output:\n{_output(log)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"alim serve did not answer /health within {START_TIMEOUT:.0f} s; "
                    f"output:\n{_output(log)}"
                )
            time.sleep(0.2)


@contextlib.contextmanager
def running_server(tmp_path: Path, **env: str) -> Iterator[str]:
    """Start `alim serve` on a free port; yields its base URL; SIGTERM (then kill) at exit."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / f"server-{port}.log"
    command = [
        sys.executable,
        "-m",
        "alim.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        # cwd is the temporary directory, so no developer `.env` file is read.
        proc = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=server_env(tmp_path, **env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(proc, base_url, log)
        yield base_url
    finally:
        _stop(proc)
