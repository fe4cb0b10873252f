"""Streams at scale: N concurrent SSE streams held open against one `alim serve` process.

The offline model is slowed (`ALIM_OFFLINE_DELAY`) so that each stream lasts ~10–20 s, the
heartbeat interval is short (`ALIM_SSE_PING_SECONDS`) and the per-key limits are raised. The
instant hashing embedder is used: this measures holding connections, not embedding (see the
retrieval section for that). The server is started with a raised open-file soft limit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.client import LoadClient
from bench.http_bench import ALIM_BODY, ALIM_HEADERS
from bench.loadgen import Job
from bench.procs import Server, open_fds, open_files_limit
from bench.servers import alim_server


def _stream_server(work: Path, delay: float, ping: float, attempt: int) -> Server:
    return alim_server(
        work,
        f"alim-streams-{attempt}",
        hashing=True,
        ALIM_OFFLINE_DELAY=str(delay),
        ALIM_SSE_PING_SECONDS=str(ping),
    )


def _one_stream_s(client: LoadClient, srv: Server) -> float | None:
    """Run two streams (warm-up: lazy imports and caches are not per-stream memory); returns
    how long one lasted."""
    warm = Job(
        name="warm",
        port=srv.port,
        kind="sse",
        path="/api/v1/graph/stream",
        body=ALIM_BODY,
        headers=ALIM_HEADERS,
        requests=2,
        concurrency=2,
        workers=1,
        timeout=300,
    )
    client.run(warm)
    durations = sorted(x for r in client.last_results for x in r["latency"])
    return durations[0] if durations else None


def run_streams(
    client: LoadClient,
    work: Path,
    counts: tuple[int, ...],
    *,
    stream_s: float,
    ping: float,
    log: Callable[[str], None],
    first_delay: float = 0.5,
    workers: int = 4,
) -> dict[str, Any]:
    """`stream_s`: how long one stream should last on an idle server; the offline model's delay
    per chunk is adjusted (server restarted) until it does, whatever the answer's length."""
    delay = first_delay
    srv: Server | None = None
    out: dict[str, Any] = {"ping_s": ping, "embedder": "hashing", "rows": []}
    try:
        for attempt in range(3):
            srv = _stream_server(work, delay, ping, attempt).start()
            nominal = _one_stream_s(client, srv)
            if nominal is None or attempt == 2 or 0.67 * stream_s <= nominal <= 1.5 * stream_s:
                break
            delay = round(delay * stream_s / nominal, 4)
            log(f"  one stream lasts {nominal:.1f} s; restarting with ALIM_OFFLINE_DELAY={delay}")
            srv.stop()
        assert srv is not None
        out["offline_delay_s"] = delay
        out["nominal_stream_s"] = nominal
        out["server_open_files_limit"] = open_files_limit(srv.pid)
        time.sleep(1.0)
        baseline = srv.rss()  # after warm-up: what the server holds with no stream open
        out["rss_baseline_mb"] = round(baseline, 1)
        for n in counts:
            time.sleep(1.0)
            rss_before = srv.rss()
            peak = {"rss": rss_before, "fds": open_fds(srv.pid)}

            def sample() -> None:
                peak["rss"] = max(peak["rss"], srv.rss())  # noqa: B023
                peak["fds"] = max(peak["fds"], open_fds(srv.pid))  # noqa: B023

            job = Job(
                name=f"streams {n}",
                port=srv.port,
                kind="sse",
                path="/api/v1/graph/stream",
                body=ALIM_BODY,
                headers=ALIM_HEADERS,
                requests=n,
                concurrency=n,
                workers=min(workers, n),
                timeout=300,
                budget_s=60,
            )
            r = client.run(job, srv, sample=sample, connect_s=1.0 + n / 400)
            results = client.last_results
            durations = [x for w in results for x in w["latency"]]
            pings = [p for w in results for p in w["pings"]]
            expected = sum(math.floor(d / ping) for d in durations)
            row = {
                "streams": n,
                "ok": r["requests"],
                "errors": r["errors"],
                "error_samples": r["error_samples"],
                "duration_p50_s": round(r["p50_ms"] / 1000, 2) if r["p50_ms"] else None,
                "duration_max_s": round(max(durations), 2) if durations else None,
                "tokens_per_stream": r.get("tokens_per_stream"),
                "ttft_p50_ms": r.get("ttft_p50_ms"),
                "ttft_p99_ms": r.get("ttft_p99_ms"),
                "wall_s": r["wall_s"],
                "heartbeats": sum(pings),
                "heartbeats_expected": expected,
                "heartbeat_delivery": round(sum(pings) / expected, 3) if expected else None,
                "streams_without_heartbeat": sum(
                    1 for d, p in zip(durations, pings, strict=True) if d >= 2 * ping and p == 0
                ),
                "rss_before_mb": round(rss_before, 1),
                "rss_peak_mb": round(peak["rss"], 1),
                "rss_per_stream_kb": round((peak["rss"] - baseline) * 1024 / n, 1),
                "open_fds_peak": peak["fds"],
                "server_cpu_s": r.get("server_cpu_s"),
                "client_cpu_s": r["client_cpu_s"],
                "client_util": r["client_util"],
                "machine_busy": r["machine_busy"],
                "other_cpu_s": r["other_cpu_s"],
            }
            log(
                f"  {n:5d} streams: {row['ok']} ok {row['errors']} errors  duration p50 "
                f"{row['duration_p50_s']} s  heartbeats {row['heartbeats']}/{expected}  "
                f"rss +{row['rss_per_stream_kb']} KiB/stream  fds {row['open_fds_peak']}"
            )
            out["rows"].append(row)
        out["server_peak_rss_mb"] = round(srv.peak_rss(), 1)
    finally:
        if srv is not None:
            srv.stop()
    return out
