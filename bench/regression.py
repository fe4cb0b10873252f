"""The CPU-per-turn regression check (issue 17): a quick `python -m bench` fails (exit 3) when
ALİM's server CPU per turn, as a ratio to a yardstick measured in the same run, is more than
30 % above the committed baseline (bench/baseline.json). Only a rise fails; a fall is shown.

The quantity, per path (invoke, stream): CPU per turn of the `alim serve` with the hashing
embedder that the http section has just measured (the engine's own cost, no model), divided by
the CPU time of `calibration_work`, a fixed piece of pure-Python work. A faster or slower machine
scales both, so the ratio travels between machines where a time would not.

How, because the plain runs are too noisy for a 30 % limit: on a shared 2-core VM the CPU per
turn of batches of 10–20 turns varies by ±20 % (the same with exact per-thread clocks, with the
garbage collector off), mostly with the scheduler moving the server's threads between cores.
So, after the section's own runs, the server is pinned to one core and measured in ROUNDS
rounds of TURNS sequential turns per path, each round right after a calibration on the same
core (in this process, pinned likewise); each path's ratio is the median of its rounds' ratios.
The server's CPU is read from its CPU-time clock (exact), not from /proc (10 ms ticks).
Figures and the floors tried first: docs/benchmarks/cpu-regression.md.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.client import LoadClient
from bench.loadgen import Job
from bench.procs import Server, cpu_clock, pin

BASELINE = Path(__file__).with_name("baseline.json")
TOLERANCE = 1.30
"""A ratio may be this many times the baseline's before the check fails."""
REFRESH = "python -m bench --quick --update-baseline"
ROUNDS = 8
TURNS = 10
"""Sequential turns per path in each round (about 0.12 s of server CPU)."""
CALIBRATION_ROUNDS = 3000  # about 55 ms of CPU on the 2-core development machine
PATHS = {"invoke": ("json", "/api/v1/graph/invoke"), "stream": ("sse", "/api/v1/graph/stream")}


def calibration_work(rounds: int = CALIBRATION_ROUNDS) -> int:
    """The same interpreter work every time: dicts, f-strings, JSON both ways, sorting, string
    methods, as a turn does them. Changing it invalidates bench/baseline.json."""
    total = 0
    for i in range(rounds):
        record = {"id": i, "words": [f"söz{j}" for j in range(40)], "score": i / 7}
        text = json.dumps(record, ensure_ascii=False)
        counts: dict[str, int] = {}
        for word in json.loads(text)["words"]:
            counts[word[-1]] = counts.get(word[-1], 0) + 1
        total += sum(sorted(counts.values())) + len(text.upper().split("Ö"))
    return total


def _calibrate(cpu: int) -> float:
    """CPU ms of two `calibration_work()` runs in this thread on `cpu`, per run."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        started = time.thread_time()
        calibration_work()
        calibration_work()
        return (time.thread_time() - started) * 500
    finally:
        os.sched_setaffinity(0, before)


def measure_rounds(
    client: LoadClient,
    server: Server,
    body: dict[str, Any],
    headers: dict[str, str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Pin `server` (ALİM, hashing embedder) to one core and measure the rounds."""
    cpu = max(os.sched_getaffinity(server.pid))
    pin(server.pid, cpu)
    clock = cpu_clock(server.pid)
    jobs = {
        path: Job(
            name=f"regression {path}",
            port=server.port,
            kind=kind,
            path=url,
            body=body,
            headers=headers,
            requests=TURNS,
            concurrency=1,
        )
        for path, (kind, url) in PATHS.items()
    }
    rounds: list[dict[str, float]] = []
    for _ in range(ROUNDS):
        row = {"calibration_ms": _calibrate(cpu)}
        for path, job in jobs.items():
            used = time.clock_gettime(clock)
            r = client.run(job, connect_s=0.1)
            used = time.clock_gettime(clock) - used
            if r["errors"]:
                raise RuntimeError(f"{job.name}: {r['errors']} errors: {r['error_samples']}")
            row[path] = used * 1000 / TURNS
        rounds.append(row)
    paths = {
        path: {
            "cpu_ms_per_turn": round(statistics.median(r[path] for r in rounds), 2),
            "ratio": round(statistics.median(r[path] / r["calibration_ms"] for r in rounds), 4),
        }
        for path in PATHS
    }
    out = {
        "cpu": cpu,
        "rounds": ROUNDS,
        "turns_per_round": TURNS,
        "calibration_ms": round(statistics.median(r["calibration_ms"] for r in rounds), 2),
        "paths": paths,
        "per_round": [{k: round(v, 2) for k, v in r.items()} for r in rounds],
    }
    log(
        f"  CPU per turn / calibration, pinned to CPU {cpu}, median of {ROUNDS} rounds: "
        + ", ".join(
            f"{p} {v['ratio']:.3f} ({v['cpu_ms_per_turn']:.1f} ms)" for p, v in paths.items()
        )
        + f"; calibration {out['calibration_ms']:.1f} ms"
    )
    return out


def measured(results: dict[str, Any]) -> dict[str, Any] | None:
    """This run's rounds (None when the http section did not measure them)."""
    return ((results.get("http") or {}).get("alim_hashing") or {}).get("regression")


def load_baseline(path: Path = BASELINE) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def check(results: dict[str, Any], baseline: dict[str, Any] | None) -> dict[str, Any]:
    """{status: pass | regressed | n/a, note, rows}: each path's ratio against the baseline's."""
    now = measured(results)
    out: dict[str, Any] = {"status": "n/a", "tolerance": TOLERANCE, "rows": []}
    if now is None:
        out["note"] = "not measured (the http section did not run or failed)"
        return out
    if baseline is None:
        out["note"] = f"no baseline: `{REFRESH}` writes one"
        return out
    if not results["meta"]["quick"]:
        out["note"] = "the baseline is a quick run's; this is a full run"
        return out
    for path in PATHS:
        ratio, then = now["paths"][path]["ratio"], baseline["paths"][path]["ratio"]
        out["rows"].append(
            {
                "path": path,
                "cpu_ms_per_turn": now["paths"][path]["cpu_ms_per_turn"],
                "calibration_ms": now["calibration_ms"],
                "ratio": ratio,
                "baseline": then,
                "limit": round(then * TOLERANCE, 4),
                "change": round(ratio / then - 1, 3),
                "status": "pass" if ratio <= then * TOLERANCE else "regressed",
            }
        )
    regressed = [r["path"] for r in out["rows"] if r["status"] == "regressed"]
    out["status"] = "regressed" if regressed else "pass"
    out["note"] = f"baseline of {baseline['measured']} (commit {baseline.get('commit')})"
    if regressed:
        out["note"] = f"{' and '.join(regressed)} regressed; {out['note']}"
    return out


def write_baseline(
    rounds: dict[str, Any], meta: dict[str, Any], path: Path = BASELINE
) -> dict[str, Any]:
    """A quick run's rounds (`measured`) as the new baseline."""
    baseline = {
        "about": "Baseline of the CPU-per-turn regression check (bench/regression.py): per "
        "path, the median over rounds of server CPU per turn (hashing embedder, pinned to one "
        f"core) / CPU of calibration_work on that core. Refresh: `{REFRESH}`.",
        "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _commit(),
        "machine": {k: meta[k] for k in ("cpus", "cpu_model", "loadavg_start")},
        **{k: v for k, v in rounds.items() if k != "per_round"},
    }
    path.write_text(json.dumps(baseline, indent=2, ensure_ascii=False) + "\n")
    return baseline


def markdown(check: dict[str, Any] | None) -> list[str]:
    """The report's section: each path's ratio, its baseline and limit, and the verdict."""
    if not check:
        return []
    parts = [
        "## CPU per turn against the baseline",
        "",
        "Server CPU per turn of ALİM with the hashing embedder, pinned to one core, divided by "
        "the CPU of a fixed calibration loop on that core (median of "
        f"{ROUNDS} interleaved rounds of {TURNS} turns); a quick run fails (exit 3) when a ratio "
        f"is more than {TOLERANCE - 1:.0%} above bench/baseline.json. Refresh: `{REFRESH}`.",
        "",
        f"**{check['status']}**" + (f" — {check['note']}" if check.get("note") else ""),
        "",
    ]
    if check["rows"]:
        parts += [
            "| path | CPU ms/turn | calibration ms | ratio | baseline | limit | change | status |",
            "|---|---|---|---|---|---|---|---|",
            *(
                f"| {r['path']} | {r['cpu_ms_per_turn']:.1f} | {r['calibration_ms']:.1f} | "
                f"{r['ratio']:.3f} | {r['baseline']:.3f} | {r['limit']:.3f} | "
                f"{r['change']:+.0%} | **{r['status']}** |"
                for r in check["rows"]
            ),
            "",
        ]
    return parts


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
