"""Runs a load-generator job across worker processes and folds the results into statistics."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from typing import Any

import numpy as np

from bench.loadgen import Job, init_worker, noop, run_worker
from bench.procs import MachineCpu, Server


def pct(values: list[float], q: float, scale: float = 1000.0) -> float | None:
    if not values:
        return None
    return round(float(np.percentile(np.asarray(values), q)) * scale, 2)


class LoadClient:
    """A pool of load-generator processes, started once and reused by every job."""

    def __init__(self, max_workers: int = 4):
        self.max_workers = max_workers
        self.pool = ProcessPoolExecutor(
            max_workers=max_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
        )
        # start every worker process now (imports done before the first timed job)
        list(self.pool.map(noop, [0.3] * max_workers))
        self.last_results: list[dict[str, Any]] = []

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LoadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(
        self,
        job: Job,
        server: Server | None = None,
        *,
        sample: Callable[[], None] | None = None,
        connect_s: float = 1.0,
    ) -> dict[str, Any]:
        """Run `job`; `sample` is called every 0.25 s while it runs (memory sampling)."""
        n = max(1, min(job.workers, job.concurrency, self.max_workers))
        job.workers = n
        job.start_at = time.time() + connect_s
        job.nonce = f"{uuid.uuid4().hex[:6]}."
        cpu0 = server.cpu() if server else 0.0
        machine = MachineCpu()
        futures = [self.pool.submit(run_worker, job, i) for i in range(n)]
        while True:
            done, _ = wait(futures, timeout=0.25)
            if sample is not None:
                sample()
            if len(done) == len(futures):
                break
        results = [f.result() for f in futures]
        self.last_results = results
        server_cpu = (server.cpu() - cpu0) if server else None
        return summarize(job, results, server, server_cpu, machine.busy(), machine.busy_seconds())


def summarize(
    job: Job,
    results: list[dict[str, Any]],
    server: Server | None,
    server_cpu: float | None,
    machine_busy: float,
    machine_busy_s: float,
) -> dict[str, Any]:
    lat = [x for r in results for x in r["latency"]]
    ttft = [x for r in results for x in r["ttft"]]
    errors = [e for r in results for e in r["errors"]]
    not_issued = sum(r["not_issued"] for r in results)
    wall = max(r["t_end"] for r in results) - min(r["t_start"] for r in results)
    client_cpu = sum(r["client_cpu_s"] for r in results)
    attempted = len(lat) + len(errors)
    out: dict[str, Any] = {
        "name": job.name,
        "kind": job.kind,
        "concurrency": job.concurrency,
        "client_workers": job.workers,
        "requests": len(lat),
        "errors": len(errors),
        "not_issued": not_issued,
        "error_samples": sorted(set(errors))[:3],
        "wall_s": round(wall, 3),
        "rps": round(len(lat) / wall, 2) if wall > 0 else None,
        "p50_ms": pct(lat, 50),
        "p90_ms": pct(lat, 90),
        "p99_ms": pct(lat, 99),
        "mean_ms": round(float(np.mean(lat)) * 1000, 2) if lat else None,
        "client_cpu_s": round(client_cpu, 3),
        "client_cpu_ms_per_req": round(client_cpu * 1000 / attempted, 3) if attempted else None,
        "client_util": round(client_cpu / (wall * job.workers), 3) if wall > 0 else None,
        "machine_busy": machine_busy,
        # CPU that neither this server nor the load generator used (other work on the machine)
        "other_cpu_s": round(max(0.0, machine_busy_s - client_cpu - (server_cpu or 0.0)), 2),
    }
    if job.kind in ("sse", "lg_stream"):
        out.update(
            ttft_p50_ms=pct(ttft, 50),
            ttft_p90_ms=pct(ttft, 90),
            ttft_p99_ms=pct(ttft, 99),
            tokens_per_stream=round(float(np.mean([t for r in results for t in r["tokens"]])), 1)
            if lat
            else None,
        )
    if server is not None and server_cpu is not None:
        out.update(
            server_cpu_s=round(server_cpu, 3),
            server_cpu_ms_per_req=round(server_cpu * 1000 / attempted, 3) if attempted else None,
            server_peak_rss_mb=round(server.peak_rss(), 1),
        )
    out["client_saturated"] = bool(out["client_util"] and out["client_util"] > 0.85)
    out["machine_saturated"] = machine_busy > 0.95
    return out


def pings_of(results: list[dict[str, Any]]) -> list[int]:
    return [p for r in results for p in r["pings"]]
