"""The benchmark report's issue-17 targets say when their goals come from another CPU: the
goals are absolute figures measured on one machine, and a run on another cannot be judged
against them without saying so."""

from __future__ import annotations

from typing import Any

from bench.report import BEFORE_CPU_MODEL, _throughput_targets


def _results(cpu_model: str) -> dict[str, Any]:
    row = {"name": "alim invoke c20", "rps": 30.0, "p99_ms": 900.0}
    seq = [
        {"name": f"alim_hashing {kind} seq", "server_cpu_ms_per_req": 9.0}
        for kind in ("invoke", "stream")
    ]
    return {
        "meta": {"quick": False, "cpu_model": cpu_model},
        "http": {"alim": {"runs": [row]}, "alim_hashing": {"runs": seq}},
    }


def _notes(results: dict[str, Any]) -> dict[str, str]:
    return {t["target"]: t["note"] for t in _throughput_targets(results)}


def test_goals_from_another_cpu_are_flagged_next_to_the_figures() -> None:
    notes = _notes(_results("AMD EPYC"))
    cpu = next(n for t, n in notes.items() if t.startswith("server CPU per turn"))
    throughput = next(n for t, n in notes.items() if t.startswith("throughput at 20 clients"))
    for note in (cpu, throughput):
        assert "another CPU" in note and "AMD EPYC" in note and BEFORE_CPU_MODEL in note


def test_on_the_goals_own_cpu_there_is_no_such_note() -> None:
    notes = _notes(_results(BEFORE_CPU_MODEL))
    assert not any("another CPU" in n for n in notes.values())
