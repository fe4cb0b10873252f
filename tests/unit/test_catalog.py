"""The catalog's scopes (alim/knowledge/catalog.py): a scope of several datasets is searched as
one ranking with the statistics of the scope alone, and its `ScopedIndex` is kept while its
datasets' indexes stay the same."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from alim.knowledge.catalog import SCOPES_KEPT, Catalog, ScopedIndex, _idf, dataset_index
from alim.knowledge.index import BUNDLED, KnowledgeIndex, SearchOptions, chunk_sentences
from alim.text import query_keywords
from bench.scale import synthetic_chunks
from tests.support.fakes import HashingEmbeddings

DIM = 32
QUERIES = ["pomidor suvarma gübrə", "картофель полив", "apple trees water", "buğda"]


def _dataset(dataset_id: str, n: int, seed: int, version: int = 1) -> KnowledgeIndex:
    chunks = synthetic_chunks(dataset_id, n, seed)
    rng = np.random.default_rng(seed)
    sentences = sum(len(chunk_sentences(c)) for c in chunks)
    return dataset_index(
        dataset_id,
        chunks,
        rng.standard_normal((n, DIM)).astype("float32"),
        rng.standard_normal((sentences, DIM)).astype("float32"),
        HashingEmbeddings(dim=DIM),
        version,
    )


@pytest.fixture(scope="module")
def bundled() -> KnowledgeIndex:
    return _dataset(BUNDLED, 60, 99)


@pytest.fixture
def catalog(bundled: KnowledgeIndex) -> Catalog:
    catalog = Catalog(lambda: bundled, HashingEmbeddings(dim=DIM))
    for d, size in enumerate((40, 120, 7)):
        catalog.apply(f"ds-{d}", 1, _dataset(f"ds-{d}", size, d))
    return catalog


def _reference_keyword_scores(scope: ScopedIndex, query: str) -> dict[tuple[int, int], float]:
    """The union's BM25 as first written: each part's scores from bm25s, word by word,
    re-weighted from the part's IDF to the union's."""
    tokens = list(dict.fromkeys(query_keywords(query)))
    per_part = [
        {t: np.asarray(p._bm25.get_scores([t]), dtype="float32") for t in tokens}
        for p in scope.parts
    ]
    df = {t: sum(int(np.count_nonzero(s[t])) for s in per_part) for t in tokens}
    total = sum(len(p.chunks) for p in scope.parts)
    out: dict[tuple[int, int], float] = {}
    for p, (part, scores) in enumerate(zip(scope.parts, per_part, strict=True)):
        combined = np.zeros(len(part.chunks), dtype="float32")
        for t, s in scores.items():
            if local := int(np.count_nonzero(s)):
                combined += s * (_idf(total, df[t]) / _idf(len(part.chunks), local))
        for i in np.flatnonzero(combined > 0):
            out[(p, int(i))] = float(combined[i])
    return out


def test_a_scopes_keyword_scores_are_bm25_over_the_union(catalog: Catalog) -> None:
    scope = catalog.index_for([BUNDLED, "ds-0", "ds-1", "ds-2"])
    assert isinstance(scope, ScopedIndex)
    offsets = [0, *np.cumsum([len(p.chunks) for p in scope.parts]).tolist()]
    for query in QUERIES:
        scores = scope._union_keyword_scores(query, SearchOptions())
        expected = _reference_keyword_scores(scope, query)
        assert expected
        assert {
            (p, int(g - offsets[p])): float(scores[g])
            for g in np.flatnonzero(scores > 0)
            for p in [int(np.searchsorted(offsets, g, side="right")) - 1]
        } == expected


def test_a_scope_searched_for_some_articles_finds_only_theirs(catalog: Catalog) -> None:
    scope = catalog.index_for([BUNDLED, "ds-0", "ds-1", "ds-2"])
    groups = tuple(sorted({scope.chunks[g].group for g in (3, 70, 200)}))
    for query in QUERIES:
        hits = scope.search(query, SearchOptions(k=5, groups=groups))
        assert hits and {h.chunk.group for h in hits} <= set(groups)
        # By similarity alone, the order is the whole scope's order, less the other articles.
        alike = scope.search(query, SearchOptions("similarity", k=3, groups=groups))
        everything = scope.search(query, SearchOptions("similarity", k=500, fetch_k=500))
        assert [h.chunk for h in alike] == [h.chunk for h in everything if h.chunk.group in groups][
            :3
        ]


def test_a_scope_is_built_once_while_its_datasets_stay_the_same(catalog: Catalog) -> None:
    scope = [BUNDLED, "ds-0", "ds-1"]
    first = catalog.index_for(scope)
    assert catalog.index_for(scope) is first
    assert catalog.index_for(["ds-0"]) is catalog._indexes["ds-0"]  # one dataset: its own index

    catalog.apply("ds-1", 2, _dataset("ds-1", 30, 5, version=2))
    again = catalog.index_for(scope)
    assert again is not first
    assert len(again.chunks) == 60 + 40 + 30
    assert "ds-1@2" in again.content_hash

    catalog.forget("ds-0")
    narrower = catalog.index_for(scope)
    assert isinstance(narrower, ScopedIndex)
    assert [p.content_hash for p in narrower.parts] == [
        "bundled@1",
        "ds-1@2",
    ]


def test_a_catalog_keeps_the_most_recent_scopes(catalog: Catalog) -> None:
    scopes = [[BUNDLED, "ds-0", *(["ds-1"] * k), f"missing-{k}"] for k in range(SCOPES_KEPT + 1)]
    kept = [catalog.index_for(s) for s in scopes]
    assert len(catalog._scopes) == SCOPES_KEPT
    assert catalog.index_for(scopes[-1]) is kept[-1]
    assert catalog.index_for(scopes[0]) is not kept[0]  # the least recent went first


@pytest.mark.parametrize("scope", [["ds-1"], [BUNDLED, "ds-0", "ds-1", "ds-2"]])
def test_a_search_in_a_worker_thread_runs_faiss_on_one_thread(
    catalog: Catalog, scope: list[str]
) -> None:
    # Searches run in worker threads (asyncio.to_thread), and libgomp keeps its thread count
    # per calling thread: a setting made where the index was built would not reach them.
    import faiss

    index = catalog.index_for(scope)
    with ThreadPoolExecutor(1) as pool:
        before = pool.submit(faiss.omp_get_max_threads).result()
        threads = pool.submit(lambda: (index.search(QUERIES[0]), faiss.omp_get_max_threads()))
        assert threads.result()[1] == 1
    assert before == len(os.sched_getaffinity(0))  # a fresh thread starts at libgomp's default


@pytest.mark.parametrize("query", QUERIES)
def test_a_scope_s_best_sentence_is_the_best_of_its_datasets(catalog: Catalog, query: str) -> None:
    scope = catalog.index_for([BUNDLED, "ds-0", "ds-1"])
    assert isinstance(scope, ScopedIndex)
    for language in ("az", "en", "ru"):
        best = scope.best_sentence(query, language)
        each = [p.best_sentence(query, language) for p in scope.parts]
        top = max((b for b in each if b is not None), key=lambda b: b.score)
        assert best is not None and best.chunk is not None
        assert (best.text, best.score) == (top.text, top.score)
        # The part holding it ranks it first in its article, as the evidence will quote it.
        ranked = scope.rank_sentences(query, best.chunk.article_id)
        assert (ranked[0].text, ranked[0].score) == (best.text, best.score)


def test_a_scope_too_large_to_scan_names_no_best_sentence(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alim.knowledge.index as knowledge_index

    scope = catalog.index_for([BUNDLED, "ds-0", "ds-1"])
    parts = [p.sentence_count for p in scope.parts]  # type: ignore[attr-defined]
    # Each part alone is small enough; together they are not.
    monkeypatch.setattr(knowledge_index, "BEST_SENTENCE_SCAN", max(parts))
    assert scope.best_sentence("buğda", "az") is None
    assert catalog.index_for(["ds-1"]).best_sentence("buğda", "az") is not None
