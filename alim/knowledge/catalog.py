"""The in-memory side of the knowledge store: one index per dataset, searched together.

Each partner dataset held in the store (`alim.knowledge.store`) is one `KnowledgeIndex` here,
built from the chunks and vectors the store holds (nothing is embedded again); the bundled base
is the persisted bundled index. A turn searches a *scope*, a list of dataset ids: the
`ScopedIndex` over their indexes. Nothing outside the scope takes part in the ranking, not even
in its statistics (BM25 weights, rare names, each language's baseline similarity), so one
partner's articles can neither be cited to another partner nor push another partner's results
down. A scope of one dataset is that dataset's index itself (the bundled base alone searches
exactly as before datasets existed).

`Catalog.apply(dataset_id, index)` swaps a dataset's index in one assignment: searches running
meanwhile keep the index they started with.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.knowledge import index as knowledge_index
from alim.knowledge.index import (
    BASELINE_PRIOR,
    BUNDLED,
    RRF_K,
    Chunk,
    Hit,
    KnowledgeIndex,
    RankedSentence,
    SearchOptions,
    _normalise,
    one_search_thread,
)
from alim.knowledge.terms import ChunkTerms
from alim.text import query_keywords


class ScopedIndex(KnowledgeIndex):
    """Several datasets' indexes searched as one: each is searched on its own (the same query
    vector), then their candidates are fused again as one ranking (dense relevance, BM25 score
    and rare names, by reciprocal rank). Sentences and titles come from the dataset index that
    holds the article.

    A chunk is known by its position in the scope (`chunks`: the parts' chunks in turn). Built
    once per scope and kept by the `Catalog` while its parts stay the same."""

    def __init__(self, parts: Sequence[KnowledgeIndex], embeddings: Embeddings) -> None:
        # Deliberately no KnowledgeIndex.__init__: the parts hold the vectors and statistics.
        self.parts = list(parts)
        self.embeddings = embeddings
        self.content_hash = "+".join(p.content_hash for p in self.parts)
        self.chunks = [c for p in self.parts for c in p.chunks]
        self._offsets = np.cumsum([0] + [len(p.chunks) for p in self.parts])
        """Part p's chunk i is the scope's chunk `_offsets[p] + i`."""
        self._init_labels()
        sample_sums: list[np.ndarray] = []
        self._sample_languages: list[str] = []
        self._sample_counts: dict[str, int] = {}
        for part in self.parts:
            for language, (_, _, sample) in part._by_language.items():
                sample_sums.append(sample.sum(axis=0, dtype=np.float64))
                self._sample_languages.append(language)
                self._sample_counts[language] = self._sample_counts.get(language, 0) + len(sample)
        self._sample_sums = (
            np.array(sample_sums) if sample_sums else np.zeros((0, self.dim), dtype=np.float64)
        )
        """Each part's sample of each language, summed (rows in `_sample_languages` order)."""
        self.group_articles = {}
        self._owner: dict[str, KnowledgeIndex] = {}
        for part in self.parts:
            for group, versions in part.group_articles.items():
                merged = self.group_articles.setdefault(group, {})
                for language, article_id in versions.items():
                    merged.setdefault(language, article_id)
            for article_id in part._article_chunk:
                self._owner.setdefault(article_id, part)

    @property
    def dim(self) -> int:
        return self.parts[0].dim if self.parts else 0

    def article_title(self, article_id: str) -> str:
        return self._owner[article_id].article_title(article_id)

    def article_language(self, article_id: str) -> str:
        return self._owner[article_id].article_language(article_id)

    def article_text(self, article_id: str) -> str:
        part = self._owner.get(article_id)
        return part.article_text(article_id) if part is not None else ""

    def rank_sentences(
        self, query: str, article_id: str, cues: Sequence[Any] = ()
    ) -> list[RankedSentence]:
        part = self._owner.get(article_id)
        return part.rank_sentences(query, article_id, cues) if part is not None else []

    def best_sentence(
        self,
        query: str,
        language: str,
        cues: Sequence[Any] = (),
        exclude: Collection[str] = (),
    ) -> RankedSentence | None:
        """The best of the parts' best sentences, each scored as its part ranks its articles'
        sentences (`rank_sentences` asks the same part); none for a scope holding more than
        BEST_SENTENCE_SCAN sentences in all, as for one index."""
        if sum(part.sentence_count for part in self.parts) > knowledge_index.BEST_SENTENCE_SCAN:
            return None
        found = [
            best
            for part in self.parts
            if (best := part.best_sentence(query, language, cues, exclude)) is not None
        ]
        return max(found, key=lambda best: best.score, default=None)

    def search_vector(self, query: str, qvec: np.ndarray, options: SearchOptions) -> list[Hit]:
        """`KnowledgeIndex.search_vector` over the union of the parts, with the statistics of
        the union: each language's baseline similarity from all parts' samples, BM25 weights
        from all parts' document frequencies, a rare name's votes counted across parts."""
        if not self.parts:
            return []
        q = _normalise(qvec.reshape(1, -1))
        fetch_k = max(options.fetch_k, options.k)
        baseline = self._baselines(q)
        cosine, relevance, dense = self._dense_union(q, fetch_k, options, baseline)
        keyword = (
            self._union_keyword_scores(query, options)
            if options.search_type == "hybrid"
            else np.zeros(len(self.chunks), dtype="float32")
        )

        named: list[int] = []
        if options.search_type == "similarity":
            order = dense
        elif options.search_type == "mmr":
            order = self._mmr(q[0], dense, options.k, options.lambda_mult)
        else:
            named = self._named_keys(query, options)
            order = _fuse_keys(dense, keyword, fetch_k, named)
        names = set(named)
        hits: list[Hit] = []
        for g in order:
            if g not in cosine:
                cosine[g] = float(self._vector(g) @ q[0])
                relevance[g] = cosine[g] - baseline[self.chunks[g].language]
            if options.score_threshold is not None and cosine[g] < options.score_threshold:
                continue
            hits.append(
                Hit(
                    self.chunks[g],
                    round(cosine[g], 4),
                    round(relevance[g], 4),
                    round(float(keyword[g]), 4),
                    g in names,
                )
            )
            if len(hits) == options.k:
                break
        return hits

    def _dense_union(
        self, q: np.ndarray, fetch_k: int, options: SearchOptions, baseline: dict[str, float]
    ) -> tuple[dict[int, float], dict[int, float], list[int]]:
        """Each part's nearest chunks of each language (`KnowledgeIndex._nearest`): their
        cosine and relevance, and the `fetch_k` most relevant (ties in the parts' order)."""
        one_search_thread()
        k = fetch_k * (5 if options.filtered else 1)
        chunks, cosines, baselines = [], [], []
        for offset, part in zip(self._offsets.tolist(), self.parts, strict=False):
            for language, (sub, ids, _) in part._by_language.items():
                scores, local = sub.search(q, min(k, len(ids)))
                found = local[0] >= 0
                chunks.append(offset + ids[local[0][found]])
                cosines.append(scores[0][found])
                baselines.append(np.full(int(found.sum()), baseline[language]))
        g = np.concatenate(chunks)
        cosine = np.concatenate(cosines).astype(np.float64)
        relevance = cosine - np.concatenate(baselines)
        if options.filtered:
            wanted = self._mask(options)[g]
            g, cosine, relevance = g[wanted], cosine[wanted], relevance[wanted]
        dense = g[np.argsort(-relevance, kind="stable")[:fetch_k]].tolist()
        keys = g.tolist()
        return (
            dict(zip(keys, cosine.tolist(), strict=True)),
            dict(zip(keys, relevance.tolist(), strict=True)),
            dense,
        )

    def _vector(self, g: int) -> np.ndarray:
        p = int(np.searchsorted(self._offsets, g, side="right")) - 1
        return self.parts[p]._vector(g - int(self._offsets[p]))

    def _baselines(self, q: np.ndarray) -> dict[str, float]:
        """language -> the query's mean similarity to the language's chunks over all parts,
        shrunk towards its mean similarity over all languages (as `KnowledgeIndex._baseline`).
        A sample's summed similarity to the query is its summed vector's (`_sample_sums`):
        one product per part and language, not one per sampled chunk."""
        sims = (self._sample_sums @ q[0].astype(np.float64)).tolist()
        sums: dict[str, float] = dict.fromkeys(self._sample_counts, 0.0)
        for language, sim in zip(self._sample_languages, sims, strict=True):
            sums[language] += sim
        total = sum(self._sample_counts.values())
        overall = sum(sums.values()) / total if total else 0.0
        return {
            language: (sums[language] + BASELINE_PRIOR * overall) / (n + BASELINE_PRIOR)
            for language, n in self._sample_counts.items()
        }

    def _union_keyword_scores(self, query: str, options: SearchOptions) -> np.ndarray:
        """BM25 (Lucene) scores over the union, one per chunk of the scope: each part's
        per-word scores re-weighted from the part's IDF to the union's (a part's own IDF would
        make a small dataset's words look common). Read straight from the parts' BM25 score
        matrices (a word's column holds its score in each chunk that has it)."""
        tokens = list(dict.fromkeys(query_keywords(query)))
        columns: dict[str, list[tuple[int, int, np.ndarray, np.ndarray]]] = {t: [] for t in tokens}
        for offset, part in zip(self._offsets.tolist(), self.parts, strict=False):
            if part._bm25 is None:
                continue
            for t in tokens:
                if (column := part._bm25.column(t)) is not None:
                    columns[t].append((offset, len(part.chunks), *column))
        total = len(self.chunks)
        combined = np.zeros(total, dtype="float32")
        for found in columns.values():  # word by word, as the parts' own BM25 adds them up
            df = sum(len(chunks) for _, _, chunks, _ in found)
            for offset, n, chunks, scores in found:
                combined[offset + chunks] += scores * (_idf(total, df) / _idf(n, len(chunks)))
        if options.filtered:
            combined *= self._mask(options)
        return combined

    def _named_keys(self, query: str, options: SearchOptions) -> list[int]:
        count: Counter[int] = Counter()
        for token in set(query_keywords(query)):
            for offset, part in zip(self._offsets.tolist(), self.parts, strict=False):
                for i in part._names.get(token, ()):
                    if options.admits(part.chunks[i]):
                        count[offset + i] += 1
        most = max(count.values(), default=0)
        return sorted(g for g, n in count.items() if n == most)


def _idf(n: int, df: int) -> float:
    """Lucene's BM25 IDF (`alim.knowledge.bm25`)."""
    return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def _fuse_keys(dense: list[int], keyword: np.ndarray, fetch_k: int, named: list[int]) -> list[int]:
    """`KnowledgeIndex._fuse` over the scope: reciprocal-rank fusion of the dense, keyword and
    rare-name rankings, ties to the better keyword score."""
    fused: dict[int, float] = {}
    matched = np.flatnonzero(keyword > 0)
    if len(matched) > fetch_k:  # those at least as good as the fetch_k-th best, ties included
        least = np.partition(keyword[matched], len(matched) - fetch_k)[len(matched) - fetch_k]
        matched = matched[keyword[matched] >= least]
    top_keyword = matched[np.argsort(-keyword[matched], kind="stable")[:fetch_k]].tolist()
    for ranking in (dense, top_keyword, named[:fetch_k]):
        for rank, g in enumerate(ranking):
            fused[g] = fused.get(g, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused, key=lambda g: (-fused[g], -float(keyword[g])))


SCOPES_KEPT = 32
"""Scopes whose `ScopedIndex` a catalog keeps (most recently searched): a partner's chats search
the same scope turn after turn, and building one over 100,000 chunks takes ~40 ms."""


class Catalog:
    """The partner datasets' indexes of this process, kept in step with the store."""

    def __init__(self, bundled: Callable[[], KnowledgeIndex], embeddings: Embeddings) -> None:
        self._bundled = bundled
        self.embeddings = embeddings
        self._indexes: dict[str, KnowledgeIndex] = {}
        self.versions: dict[str, int] = {}
        """Dataset id -> the store version its index here was built from."""
        self._scopes: OrderedDict[tuple[str, ...], ScopedIndex] = OrderedDict()
        """The scopes searched lately, least recent first (at most SCOPES_KEPT)."""
        self._lock = threading.Lock()

    def apply(self, dataset_id: str, version: int, index: KnowledgeIndex | None) -> None:
        """Install a dataset's index (None: the dataset is empty or gone)."""
        with self._lock:
            if index is None or not index.chunks:
                self._indexes.pop(dataset_id, None)
            else:
                self._indexes[dataset_id] = index
            self.versions[dataset_id] = version
            self._drop_scopes(dataset_id)

    def forget(self, dataset_id: str) -> None:
        with self._lock:
            self._indexes.pop(dataset_id, None)
            self.versions.pop(dataset_id, None)
            self._drop_scopes(dataset_id)

    def _drop_scopes(self, dataset_id: str) -> None:
        """Let go of the scopes holding a dataset's previous index."""
        for scope in [s for s in self._scopes if dataset_id in s]:
            del self._scopes[scope]

    def chunk_count(self) -> int:
        return sum(len(i.chunks) for i in list(self._indexes.values()))

    def index_for(self, scope: Sequence[str]) -> KnowledgeIndex:
        """The index a turn with this scope searches."""
        parts: list[KnowledgeIndex] = []
        for dataset_id in dict.fromkeys(scope):
            if dataset_id == BUNDLED:
                parts.append(self._bundled())
            elif (found := self._indexes.get(dataset_id)) is not None:
                parts.append(found)
        if len(parts) == 1:
            return parts[0]
        key = tuple(dict.fromkeys(scope))
        with self._lock:
            kept = self._scopes.get(key)
            if kept is not None and _same(kept.parts, parts):
                self._scopes.move_to_end(key)
                return kept
        scoped = ScopedIndex(parts, self.embeddings)
        with self._lock:
            self._scopes[key] = scoped
            self._scopes.move_to_end(key)
            while len(self._scopes) > SCOPES_KEPT:
                self._scopes.popitem(last=False)
        return scoped


def _same(these: Sequence[KnowledgeIndex], those: Sequence[KnowledgeIndex]) -> bool:
    return len(these) == len(those) and all(a is b for a, b in zip(these, those, strict=True))


def dataset_index(
    dataset_id: str,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    embeddings: Embeddings,
    version: int,
    *,
    terms: Sequence[ChunkTerms] | None = None,
) -> KnowledgeIndex:
    """`terms`: each chunk's `ChunkTerms`, as stored with it (None: computed here)."""
    return KnowledgeIndex(
        chunks,
        vectors,
        embeddings=embeddings,
        content_hash=f"{dataset_id}@{version}",
        sentence_vectors=sentence_vectors,
        terms=terms,
    )
