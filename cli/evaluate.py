"""Route accuracy, retrieval hit@3 and escalation rate on a labelled question set.

`alim eval [eval/questions.jsonl]` runs every question through the real graph (memory
checkpointer, forecast service pointed at nothing, so weather turns take the unavailable path)
and through the index, and prints the figures the README reports.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alim.engine import Engine, TurnRequest
from alim.knowledge.index import SearchOptions
from alim.settings import Settings
from alim.threads import Owner
from graphs.deps import GraphDeps


@dataclass
class EvalReport:
    total: int = 0
    route_correct: int = 0
    retrieval_total: int = 0
    hit_at_3: int = 0
    escalated: int = 0
    escalation_expected: int = 0
    escalation_correct: int = 0
    by_language: dict[str, Counter[str]] = field(default_factory=dict)
    misses: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "questions": self.total,
            "route_accuracy": round(self.route_correct / max(self.total, 1), 3),
            "retrieval_hit_at_3": round(self.hit_at_3 / max(self.retrieval_total, 1), 3),
            "escalation_rate": round(self.escalated / max(self.total, 1), 3),
            "escalation_agreement": round(self.escalation_correct / max(self.total, 1), 3),
            "route_accuracy_by_language": {
                lang: round(c["correct"] / max(c["total"], 1), 3)
                for lang, c in sorted(self.by_language.items())
            },
            "misses": self.misses,
        }


def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def evaluate(path: Path, settings: Settings, deps: GraphDeps | None = None) -> EvalReport:
    settings = settings.model_copy(
        update={
            "checkpointer": "memory",
            "weather_base_url": "http://127.0.0.1:9/v1",
            "weather_timeout": 0.2,
            "llm_provider": "offline",
            "llm_fallbacks": [],
        }
    )
    deps = deps or GraphDeps(settings)
    report = EvalReport()
    async with Engine.open(settings, deps) as engine:
        for q in load_questions(path):
            result = await engine.invoke(TurnRequest(q["question"], Owner("eval", q["id"])))
            report.total += 1
            lang = report.by_language.setdefault(q["lang"], Counter())
            lang["total"] += 1
            ok = result.route == q["route"]
            report.route_correct += ok
            lang["correct"] += ok
            report.escalated += result.escalated
            report.escalation_correct += result.escalated == q["escalate"]
            miss: dict[str, Any] = {}
            if not ok:
                miss["route"] = result.route
            if result.escalated != q["escalate"]:
                miss["escalated"] = result.escalated
                miss["confidence"] = result.confidence
            if q.get("expected_groups"):
                report.retrieval_total += 1
                hits = deps.index().search(q["question"], SearchOptions(k=3))
                groups = [h.chunk.group for h in hits]
                if set(groups) & set(q["expected_groups"]):
                    report.hit_at_3 += 1
                else:
                    miss["top3"] = groups
            if miss:
                report.misses.append(
                    {"id": q["id"], "question": q["question"], "expected": q["route"], **miss}
                )
    return report
