"""Subprocess servers on free ports, and their CPU and memory read from /proc."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE_WANTED = 65_536


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_nofile(wanted: int = NOFILE_WANTED) -> int:
    """Raise this process's soft open-file limit towards `wanted` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ------------------------------------------------------------------------------- /proc readers
def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
                out.extend(int(x) for x in text.split())
    return out


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_children(p))
    return seen


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree, including reaped children (cutime/cstime)."""
    total = 0
    for i, p in enumerate(process_tree(pid)):
        f = _stat_fields(p)
        if f is None:
            continue
        # fields after the command: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
        total += int(f[11]) + int(f[12])
        if i == 0:
            total += int(f[13]) + int(f[14])
    return total / CLK_TCK


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(pid: int) -> float:
    """Current resident memory of the process tree (MiB)."""
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid)) / 1024


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) summed over the process tree (MiB)."""
    return sum(_status_kb(p, "VmHWM") for p in process_tree(pid)) / 1024


def open_files_limit(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def open_fds(pid: int) -> int:
    return sum(
        len(os.listdir(f"/proc/{p}/fd"))
        for p in process_tree(pid)
        if os.path.isdir(f"/proc/{p}/fd")
    )


class MachineCpu:
    """CPU use of the whole machine between two reads of /proc/stat (all processes, ours or
    not: other work on the machine shows up as busy time that neither server nor client used)."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [int(x) for x in parts[:8]]  # guest time is already counted in user
        idle = values[3] + values[4]  # idle + iowait
        return sum(values), idle

    def busy(self) -> float:
        """Busy fraction of all cores."""
        total, idle = self._read()
        dt = total - self._start[0]
        return 0.0 if dt <= 0 else round(1.0 - (idle - self._start[1]) / dt, 3)

    def busy_seconds(self) -> float:
        """CPU seconds used by everything on the machine."""
        total, idle = self._read()
        return ((total - self._start[0]) - (idle - self._start[1])) / CLK_TCK


# ------------------------------------------------------------------------------------ servers
class ServerError(RuntimeError):
    """A server exited or did not become healthy; the message quotes its log."""


@dataclass
class Server:
    """One server subprocess (its own session, so its whole group stops with it)."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    log: Path
    health: str = "/health"
    start_timeout: float = 180.0
    proc: subprocess.Popen[bytes] | None = None
    started_s: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def start(self) -> Server:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=raise_nofile,  # only setrlimit: safe after fork
            )
        deadline = t0 + self.start_timeout
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if self.proc.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.output()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base_url + self.health).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    self.stop()
                    raise ServerError(f"{self.name} not healthy in time:\n{self.output()}")
                time.sleep(0.2)
        self.started_s = round(time.monotonic() - t0, 2)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        # stragglers of the group (workers of langgraph dev, …)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        return rss_mb(self.pid)

    def peak_rss(self) -> float:
        return peak_rss_mb(self.pid)


@contextlib.contextmanager
def running(server: Server, on_start: Callable[[Server], None] | None = None) -> Iterator[Server]:
    try:
        server.start()
        if on_start is not None:
            on_start(server)
        yield server
    finally:
        server.stop()
