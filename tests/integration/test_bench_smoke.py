"""The benchmark suite runs end to end: `python -m bench --quick` starts its servers, measures
every section and writes a report. The shape of the results is checked, and one figure: CPU per
turn against the committed baseline (bench/baseline.json), as a ratio to a yardstick measured in
the same run, so the check holds on any machine (bench/regression.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Real
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HTTP_TARGETS = ("floor", "alim", "alim_hashing", "langgraph_dev")
REGRESSED = 3  # the exit status of a quick run whose CPU per turn regressed


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and value == value  # not NaN


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, int]:
    """The quick run's results, report folder and exit status (3: CPU per turn regressed)."""
    out = tmp_path_factory.mktemp("bench")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIM_") or "TEST" in k}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=840,
    )
    failed = f"python -m bench --quick failed:\n{proc.stderr[-6000:]}"
    assert proc.returncode in (0, REGRESSED), failed
    return json.loads((out / "results.json").read_text()), out, proc.returncode


@pytest.fixture(scope="module")
def results(bench_run: tuple[dict[str, Any], Path, int]) -> tuple[dict[str, Any], Path]:
    return bench_run[0], bench_run[1]


@pytest.mark.timeout(900)
def test_every_section_ran_without_errors(results: tuple[dict[str, Any], Path]) -> None:
    data, _ = results
    assert data["section_errors"] == {}
    for section in (
        "http",
        "streams",
        "retrieval",
        "scale",
        "answer",
        "checkpointer",
        "runs",
        "targets",
        "meta",
    ):
        assert data.get(section), f"section {section} is missing or empty"
    assert _number(data["meta"]["total_s"])


@pytest.mark.timeout(900)
def test_http_targets_have_numbers_and_no_errors(results: tuple[dict[str, Any], Path]) -> None:
    http = results[0]["http"]
    assert set(HTTP_TARGETS) <= set(http)
    for name in HTTP_TARGETS:
        runs = http[name]["runs"]
        assert "seq" in {r["name"].rsplit(" ", 1)[1] for r in runs}
        assert len(runs) == 4, f"{name}: expected json/stream × seq/concurrent runs"
        for r in runs:
            assert r["errors"] == 0, (name, r["name"], r["error_samples"])
            assert r["requests"] > 0
            for key in (
                "rps",
                "p50_ms",
                "p90_ms",
                "p99_ms",
                "server_cpu_ms_per_req",
                "server_peak_rss_mb",
                "client_cpu_s",
            ):
                assert _number(r[key]), (name, r["name"], key, r[key])
            if r["kind"] in ("sse", "lg_stream"):
                assert _number(r["ttft_p50_ms"]), (name, r["name"])


@pytest.mark.timeout(900)
def test_streams_retrieval_and_checkpointer_sections(results: tuple[dict[str, Any], Path]) -> None:
    data, _ = results
    streams = data["streams"]
    assert streams["rows"]
    for row in streams["rows"]:
        assert row["errors"] == 0, row["error_samples"]
        assert row["ok"] == row["streams"]
        for key in ("rss_per_stream_kb", "heartbeats", "duration_p50_s", "open_fds_peak"):
            assert _number(row[key]), key
    assert _number(streams["server_open_files_limit"])

    retrieval = data["retrieval"]
    assert _number(retrieval["embedding"]["p50_ms"])
    assert {(r["vectors"], r["chunks"]) for r in retrieval["faiss"]} == {
        (kind, n) for kind in ("uniform", "clustered") for n in retrieval["sizes"]
    }
    for row in retrieval["faiss"]:
        assert _number(row["flat_omp1"]["p99_ms"])
        for h in row["hnsw"]:
            assert 0.0 <= h["recall_at_5"] <= 1.0
            assert _number(h["p99_ms"])
    assert [r["chunks"] for r in retrieval["hybrid"]] == retrieval["sizes"]
    for row in retrieval["hybrid"]:
        assert _number(row["hybrid"]["p99_ms"]) and _number(row["similarity"]["p99_ms"])

    ck = data["checkpointer"]
    backends = {r["backend"] for r in ck["rows"]}
    assert {"memory", "sqlite"} <= backends
    if os.environ.get("CI"):
        assert "postgres" in backends, ck["skipped"]
    else:
        assert "postgres" in backends or "postgres" in ck["skipped"]
    for row in ck["rows"]:
        assert _number(row["p50_ms"]) and row["turns"] > 0
        if row["backend"] != "memory":
            assert _number(row["payload_bytes_per_turn"])


@pytest.mark.timeout(900)
def test_the_answer_cost_is_measured_with_one_query_embedding_per_turn(
    results: tuple[dict[str, Any], Path],
) -> None:
    answer = results[0]["answer"]
    for key in ("understanding_p50_ms", "evidence_p50_ms", "added_p50_ms", "added_p90_ms"):
        assert _number(answer[key]) and answer[key] > 0, key
    assert answer["query_embeddings_per_turn"] == 1.0  # the evidence reuses the search's vector


@pytest.mark.timeout(900)
def test_the_event_log_replays_runs_and_cut_streams_resume(
    results: tuple[dict[str, Any], Path],
) -> None:
    runs = results[0]["runs"]
    assert [r["event_log"] for r in runs["cost"]] == [False, True]
    for row in runs["cost"]:
        assert row["events_per_stream"] > 200  # the constant model's 200 chunks, and the rest
        assert _number(row["server_cpu_ms_per_turn"]) and row["server_cpu_ms_per_turn"] > 0
    assert runs["replay"]["identical"] and _number(runs["replay"]["p50_ms"])
    assert runs["cuts"]["survived"] == runs["cuts"]["streams"] > 0, runs["cuts"]["failures"]


@pytest.mark.timeout(900)
def test_report_files_and_target_checks(results: tuple[dict[str, Any], Path]) -> None:
    data, out = results
    assert len(data["targets"]) == 13
    for target in data["targets"]:
        assert target["status"] in ("PASS", "MISS"), target
        assert target["measured"] and target["goal"]
    report = (out / "results.md").read_text()
    assert "## Targets" in report
    for chart in data["charts"]:
        assert (out / chart).stat().st_size > 0
    assert {"latency.png", "streams_memory.png", "retrieval.png"} <= set(data["charts"])


@pytest.mark.timeout(900)
def test_cpu_per_turn_has_not_regressed_from_the_baseline(
    bench_run: tuple[dict[str, Any], Path, int],
) -> None:
    """Server CPU per turn (hashing embedder, pinned to one core) / a calibration loop's CPU on
    that core, invoke and stream: at most 1.3 × bench/baseline.json's; a regression exits 3 and
    the report says which path."""
    data, out, returncode = bench_run
    check = data["regression"]
    rows = {r["path"]: r for r in check["rows"]}
    assert set(rows) == {"invoke", "stream"}, check["note"]  # a baseline exists and was compared
    for row in rows.values():
        assert _number(row["ratio"]) and row["ratio"] > 0
        assert row["limit"] == pytest.approx(row["baseline"] * 1.3, abs=0.001)
    report = (out / "results.md").read_text()
    assert "## CPU per turn against the baseline" in report
    regressed = [
        f"{p}: {r['ratio']} > {r['limit']}" for p, r in rows.items() if r["ratio"] > r["limit"]
    ]
    assert check["status"] == ("regressed" if regressed else "pass")
    assert returncode == (REGRESSED if regressed else 0)
    assert not regressed, f"CPU per turn regressed (ratio > limit): {regressed}; {check['note']}"
