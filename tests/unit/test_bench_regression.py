"""The CPU-per-turn regression check (bench.regression) on made-up rounds: the ratio is CPU per
turn over the calibration's CPU, a rise past 1.3 × the baseline fails and says which path, a fall
never does, and a quick run's rounds become the baseline."""

from pathlib import Path
from typing import Any

import pytest

from bench.regression import calibration_work, check, load_baseline, markdown, write_baseline


def results(invoke: float, stream: float, calibration_ms: float = 50.0) -> dict[str, Any]:
    """A quick run whose rounds measured `invoke` and `stream` ms per turn."""
    rounds = {
        "cpu": 1,
        "rounds": 8,
        "turns_per_round": 10,
        "calibration_ms": calibration_ms,
        "paths": {
            "invoke": {"cpu_ms_per_turn": invoke, "ratio": invoke / calibration_ms},
            "stream": {"cpu_ms_per_turn": stream, "ratio": stream / calibration_ms},
        },
        "per_round": [],
    }
    return {
        "meta": {"quick": True, "cpus": 2, "cpu_model": "test", "loadavg_start": "0.50"},
        "http": {"alim_hashing": {"runs": [], "regression": rounds}},
    }


@pytest.fixture
def baseline(tmp_path: Path) -> dict[str, Any]:
    run = results(20.0, 25.0)
    write_baseline(run["http"]["alim_hashing"]["regression"], run["meta"], tmp_path / "b.json")
    found = load_baseline(tmp_path / "b.json")
    assert found is not None
    return found


def test_a_quick_runs_rounds_become_the_baseline(baseline: dict[str, Any]) -> None:
    assert baseline["paths"]["invoke"]["ratio"] == 0.4
    assert baseline["paths"]["stream"]["ratio"] == 0.5
    assert baseline["calibration_ms"] == 50.0 and "per_round" not in baseline
    assert "--update-baseline" in baseline["about"] and baseline["machine"]["cpus"] == 2


def test_a_slower_machine_is_no_regression(baseline: dict[str, Any]) -> None:
    slower = check(results(30.0, 37.5, calibration_ms=75.0), baseline)  # all 1.5× the CPU
    assert slower["status"] == "pass"
    assert [r["change"] for r in slower["rows"]] == [0.0, 0.0]


def test_more_than_30_percent_above_the_baseline_fails_and_says_which(
    baseline: dict[str, Any],
) -> None:
    assert check(results(25.8, 25.0), baseline)["status"] == "pass"  # invoke +29 %

    regressed = check(results(26.4, 25.0), baseline)  # invoke +32 %

    assert regressed["status"] == "regressed"
    assert [(r["path"], r["status"]) for r in regressed["rows"]] == [
        ("invoke", "regressed"),
        ("stream", "pass"),
    ]
    assert regressed["note"].startswith("invoke regressed")
    assert "**regressed**" in "\n".join(markdown(regressed))


def test_an_improvement_never_fails(baseline: dict[str, Any]) -> None:
    faster = check(results(5.0, 6.0), baseline)
    assert faster["status"] == "pass"
    assert faster["rows"][0]["change"] == -0.75


def test_without_a_baseline_or_a_quick_run_nothing_is_compared(baseline: dict[str, Any]) -> None:
    assert check(results(20.0, 25.0), None)["status"] == "n/a"
    full = results(90.0, 90.0)
    full["meta"]["quick"] = False
    assert check(full, baseline)["status"] == "n/a"
    assert check({"meta": {"quick": True}, "http": {}}, baseline)["status"] == "n/a"


def test_the_calibration_is_the_same_work_every_time() -> None:
    assert calibration_work(50) == calibration_work(50) > 0
