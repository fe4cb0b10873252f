"""Hand-off analytics: how long escalations wait to be claimed and answered, p50 and p90, for a
partner as a whole and per agent. Pure functions over `EscalationStore.timings()` rows.

Time to claim: creation → first claim (by the agent who first claimed it). Time to answer:
creation → the expert's answer (by the agent who answered). Closed and cancelled escalations
have no answer time; open ones count as waiting. An escalation an expert kept after answering
(`kept_by_expert`) was never waiting to be claimed: it has no claim time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from typing_extensions import TypedDict

from alim.handoff import KEPT_BY_EXPERT


class Percentiles(TypedDict):
    count: int
    p50: float | None
    p90: float | None
    """Seconds (linear interpolation between ranks); None with no sample."""


class HandoffTimes(TypedDict):
    escalations: int
    open: int
    answered: int
    closed: int
    time_to_claim: Percentiles
    time_to_answer: Percentiles


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (rank - low), 3)


def percentiles(values: list[float]) -> Percentiles:
    return Percentiles(count=len(values), p50=percentile(values, 0.5), p90=percentile(values, 0.9))


def _seconds(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _claim_time(row: Mapping[str, Any]) -> float | None:
    if row.get("reason") == KEPT_BY_EXPERT:
        return None
    return _seconds(row["created_at"], row["first_claimed_at"])


def _times(rows: list[Mapping[str, Any]]) -> HandoffTimes:
    claims = [_claim_time(r) for r in rows]
    answers = [
        _seconds(r["created_at"], r["resolved_at"]) for r in rows if r["status"] == "resolved"
    ]
    return HandoffTimes(
        escalations=len(rows),
        open=sum(r["status"] == "open" for r in rows),
        answered=sum(r["status"] == "resolved" for r in rows),
        closed=sum(r["status"] == "closed" for r in rows),
        time_to_claim=percentiles([c for c in claims if c is not None]),
        time_to_answer=percentiles([a for a in answers if a is not None]),
    )


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """{"partner": HandoffTimes, "agents": {agent: HandoffTimes}}: an agent's row holds the
    escalations it claimed first or answered (its claim and answer times respectively)."""
    rows = list(rows)
    agents: dict[str, dict[str, list[float]]] = defaultdict(lambda: {"claim": [], "answer": []})
    handled: dict[str, set[int]] = defaultdict(set)
    for i, r in enumerate(rows):
        claim = _claim_time(r)
        if r["first_claimed_by"] and claim is not None:
            agents[r["first_claimed_by"]]["claim"].append(claim)
            handled[r["first_claimed_by"]].add(i)
        answer = _seconds(r["created_at"], r["resolved_at"])
        if r["status"] == "resolved" and r["agent_id"] and answer is not None:
            agents[r["agent_id"]]["answer"].append(answer)
            handled[r["agent_id"]].add(i)
    return {
        "partner": _times(rows),
        "agents": {
            name: {
                **_times([rows[i] for i in sorted(handled[name])]),
                "time_to_claim": percentiles(samples["claim"]),
                "time_to_answer": percentiles(samples["answer"]),
            }
            for name, samples in sorted(agents.items())
        },
    }
