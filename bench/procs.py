"""Server subprocesses on free ports of 127.0.0.1 (`alim serve` and the others the benchmarks
compare it with), and their CPU and memory read from /proc.

This is the one launcher of `alim serve` as a subprocess: the benchmarks (bench.servers) and the
integration and reliability tests (tests.support.alim_serve) both start their servers here.

    server = alim_serve(data_dir, {"ALIM_OFFLINE_DELAY": "0.05"})
    with server:                      # start: a free port, then wait until /health answers
        httpx.get(server.base_url + "/health")
        server.kill()                 # SIGKILL, reaped (or terminate(), wait(), stop())
        server.start()                # the same data and environment, on a new port
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NOFILE_WANTED = 65_536


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def raise_nofile(wanted: int = NOFILE_WANTED) -> int:
    """Raise this process's soft open-file limit towards `wanted` (capped by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def clean_env(**settings: str) -> dict[str, str]:
    """The caller's environment without its ALIM_* variables, with the project first on
    PYTHONPATH and unbuffered output; then `settings` (ALIM_* or any other variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


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


def cpu_clock(pid: int) -> int:
    """The id of `pid`'s CPU-time clock for `time.clock_gettime`: all its threads, live or
    ended, to the nanosecond (/proc's times count 10 ms ticks); not its child processes."""
    clock = ctypes.c_int()
    error = ctypes.CDLL(None).clock_getcpuclockid(pid, ctypes.byref(clock))
    if error:
        raise OSError(error, os.strerror(error))
    return clock.value


def pin(pid: int, cpu: int) -> None:
    """Run every thread of `pid`'s process tree on `cpu` only (threads and processes they start
    later inherit it)."""
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(int(tid), {cpu})


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
    """A server exited or did not answer its health check in time; the message quotes its
    output."""


def _read(log: Path) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"<could not read {log}: {exc}>"


@dataclass
class Server:
    """One server subprocess on 127.0.0.1, its stdout and stderr in a log file.

    Every `start` takes a new free port and writes a new log (`log_name`, formatted with `name`
    and `port`, under `log_dir`), so a stopped or killed server starts again over the same data
    and environment. `argv` gives the command line for a port. With `group`, the server runs
    in its own session with a raised open-file limit and signals go to its whole process group
    (servers that fork workers); without it, to the process alone. `quote_chars`: how much of
    the end of the log a `ServerError` quotes (None: all of it).
    """

    name: str
    argv: Callable[[int], list[str]]
    env: Mapping[str, str]
    cwd: Path
    log_dir: Path
    log_name: str = "{name}-{port}.log"
    health: str = "/health"
    start_timeout: float = 120.0
    stop_timeout: float = 15.0
    group: bool = False
    quote_chars: int | None = None
    port: int = field(default=0, init=False)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    started_s: float = field(default=0.0, init=False)
    logs: list[Path] = field(default_factory=list, init=False)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Server:
        """Start on a free port and wait until `health` answers 200; on failure the server is
        stopped and `ServerError` quotes its output."""
        assert not self.alive, f"{self.name} is already running"
        self.port = free_port()
        log = self.log_dir / self.log_name.format(name=self.name, port=self.port)
        log.parent.mkdir(parents=True, exist_ok=True)
        self.cwd.mkdir(parents=True, exist_ok=True)
        if log not in self.logs:
            self.logs.append(log)
        t0 = time.monotonic()
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                self.argv(self.port),
                cwd=self.cwd,
                env=dict(self.env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=self.group,
                preexec_fn=raise_nofile if self.group else None,  # only setrlimit: safe after fork
            )
        try:
            self._wait_healthy(t0 + self.start_timeout)
        except BaseException:
            self.stop()
            raise
        self.started_s = round(time.monotonic() - t0, 2)
        return self

    def _wait_healthy(self, deadline: float) -> None:
        proc = self._process()
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while True:
                if proc.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with code {proc.returncode} before answering "
                        f"{self.health}; output:\n{self._quote()}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.base_url + self.health).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise ServerError(
                        f"{self.name} did not answer {self.health} within "
                        f"{self.start_timeout:.0f} s; output:\n{self._quote()}"
                    )
                time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `stop_timeout`. Safe to call on a
        server that exited, was never started or was stopped already."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=self.stop_timeout)
        if self.group:  # stragglers of the group (workers of langgraph dev, …)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    def kill(self) -> int:
        """SIGKILL, then reap; returns the exit status (-9)."""
        proc = self._process(alive=True)
        self._signal(signal.SIGKILL)
        return proc.wait(timeout=self.stop_timeout)

    def terminate(self) -> None:
        """SIGTERM, without waiting."""
        self._process(alive=True)
        self._signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int:
        """The exit status; `subprocess.TimeoutExpired` if still running after `timeout` s."""
        return self._process().wait(timeout=timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ inspection
    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        return self._process().pid

    @property
    def log(self) -> Path:
        """The log of the latest start."""
        assert self.logs, f"{self.name} was never started"
        return self.log_dir / self.log_name.format(name=self.name, port=self.port)

    def output(self, last: int | None = None) -> str:
        """What the server wrote, across restarts (the last `last` characters)."""
        if len(self.logs) == 1:
            text = _read(self.logs[0])
        else:
            text = "\n".join(f"--- {log.name}\n{_read(log)}" for log in self.logs)
        return text if last is None else text[-last:]

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> float:
        """Current resident memory of the server's process tree (MiB)."""
        return rss_mb(self.pid)

    def peak_rss(self) -> float:
        return peak_rss_mb(self.pid)

    # ------------------------------------------------------------------ internals
    def _process(self, *, alive: bool = False) -> subprocess.Popen[bytes]:
        proc = self.proc
        assert proc is not None, f"{self.name} was never started"
        assert not alive or proc.poll() is None, f"{self.name} is not running"
        return proc

    def _signal(self, sig: signal.Signals) -> None:
        pid = self._process().pid
        with contextlib.suppress(ProcessLookupError):
            if self.group:
                os.killpg(pid, sig)  # our own process group (start_new_session)
            else:
                os.kill(pid, sig)

    def _quote(self) -> str:
        text = _read(self.log)
        return text if self.quote_chars is None else text[-self.quote_chars :]


@contextlib.contextmanager
def running(server: Server, on_start: Callable[[Server], None] | None = None) -> Iterator[Server]:
    """Start `server` (then call `on_start`), stop it when the block ends."""
    with server:
        if on_start is not None:
            on_start(server)
        yield server


# ------------------------------------------------------------------------------- alim serve
def alim_serve_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "cli", "serve", "--host", HOST, "--port", str(port)]


def alim_serve(
    data_dir: Path,
    settings: Mapping[str, str],
    *,
    name: str = "alim serve",
    stop_timeout: float = 15.0,
) -> Server:
    """`alim serve` (not started) with ALIM_DATA_DIR=`data_dir` and `settings`, in an environment
    clean of the caller's ALIM_* variables (`clean_env`). It runs in `data_dir`, so no
    developer `.env` file is read, and logs to `<data_dir>/server-<port>.log`."""
    return Server(
        name=name,
        argv=alim_serve_argv,
        env=clean_env(**{"ALIM_DATA_DIR": str(data_dir), **settings}),
        cwd=data_dir,
        log_dir=data_dir,
        log_name="server-{port}.log",
        stop_timeout=stop_timeout,
    )
