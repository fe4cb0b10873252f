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
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

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
    chunk_sentences,
)
from alim.text import query_keywords


class ScopedIndex(KnowledgeIndex):
    """Several datasets' indexes searched as one: each is searched on its own (the same query
    vector), then their candidates are fused again as one ranking (dense relevance, BM25 score
    and rare names, by reciprocal rank). Sentences and titles come from the dataset index that
    holds the article."""

    def __init__(self, parts: Sequence[KnowledgeIndex], embeddings: Embeddings) -> None:
        # Deliberately no KnowledgeIndex.__init__: the parts hold the vectors and statistics.
        self.parts = list(parts)
        self.embeddings = embeddings
        self.content_hash = "+".join(p.content_hash for p in self.parts)
        self.chunks = [c for p in self.parts for c in p.chunks]
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

    def rank_sentences(
        self, query: str, article_id: str, cues: Sequence[Any] = ()
    ) -> list[RankedSentence]:
        part = self._owner.get(article_id)
        return part.rank_sentences(query, article_id, cues) if part is not None else []

    def search_vector(self, query: str, qvec: np.ndarray, options: SearchOptions) -> list[Hit]:
        """`KnowledgeIndex.search_vector` over the union of the parts, with the statistics of
        the union: each language's baseline similarity from all parts' samples, BM25 weights
        from all parts' document frequencies, a rare name's votes counted across parts."""
        if not self.parts:
            return []
        q = _normalise(qvec.reshape(1, -1))
        fetch_k = max(options.fetch_k, options.k)
        topics = options.topics
        baseline = self._baselines(q)
        cosine: dict[Key, float] = {}
        for p, part in enumerate(self.parts):
            found, _ = part._dense(q, fetch_k * (5 if topics else 1))
            for i, score in found.items():
                if not topics or part.chunks[i].topic in topics:
                    cosine[(p, i)] = score
        relevance = {key: c - baseline(self._chunk(key).language) for key, c in cosine.items()}
        dense = sorted(relevance, key=lambda key: -relevance[key])[:fetch_k]
        keyword = (
            self._union_keyword_scores(query, topics) if options.search_type == "hybrid" else {}
        )

        named: list[Key] = []
        if options.search_type == "similarity":
            order = dense
        elif options.search_type == "mmr":
            order = self._mmr(q[0], dense, options.k, options.lambda_mult)
        else:
            named = self._named_keys(query, topics)
            order = _fuse_keys(dense, keyword, fetch_k, named)
        names = set(named)
        hits: list[Hit] = []
        for key in order:
            if key not in cosine:
                p, i = key
                cosine[key] = float(self.parts[p]._vector(i) @ q[0])
                relevance[key] = cosine[key] - baseline(self._chunk(key).language)
            if options.score_threshold is not None and cosine[key] < options.score_threshold:
                continue
            hits.append(
                Hit(
                    self._chunk(key),
                    round(cosine[key], 4),
                    round(relevance[key], 4),
                    round(keyword.get(key, 0.0), 4),
                    key in names,
                )
            )
            if len(hits) == options.k:
                break
        return hits

    def _chunk(self, key: Key) -> Chunk:
        return self.parts[key[0]].chunks[key[1]]

    def _baselines(self, q: np.ndarray) -> Callable[[str], float]:
        """language -> the query's mean similarity to the language's chunks over all parts,
        shrunk towards its mean similarity over all languages (as `KnowledgeIndex._baseline`)."""
        sums: dict[str, float] = {}
        counts: dict[str, int] = {}
        for part in self.parts:
            for language, (_, _, sample) in part._by_language.items():
                sims = sample @ q[0]
                sums[language] = sums.get(language, 0.0) + float(sims.sum())
                counts[language] = counts.get(language, 0) + len(sims)
        total = sum(counts.values())
        overall = sum(sums.values()) / total if total else 0.0

        def baseline(language: str) -> float:
            n = counts.get(language, 0)
            return (sums.get(language, 0.0) + BASELINE_PRIOR * overall) / (n + BASELINE_PRIOR)

        return baseline

    def _union_keyword_scores(self, query: str, topics: tuple[str, ...]) -> dict[Key, float]:
        """BM25 (Lucene) scores over the union: each part's per-word scores re-weighted from
        the part's IDF to the union's (a part's own IDF would make a small dataset's words
        look common). Only chunks with a positive score."""
        tokens = list(dict.fromkeys(query_keywords(query)))
        per_part: list[dict[str, np.ndarray]] = []
        df: dict[str, int] = dict.fromkeys(tokens, 0)
        total = 0
        for part in self.parts:
            scores: dict[str, np.ndarray] = {}
            if part._bm25 is not None:
                for t in tokens:
                    s = np.asarray(part._bm25.get_scores([t]), dtype="float32")
                    scores[t] = s
                    df[t] += int(np.count_nonzero(s))
            per_part.append(scores)
            total += len(part.chunks)
        out: dict[Key, float] = {}
        for p, (part, scores) in enumerate(zip(self.parts, per_part, strict=True)):
            n = len(part.chunks)
            combined = np.zeros(n, dtype="float32")
            for t, s in scores.items():
                local = int(np.count_nonzero(s))
                if local:
                    combined += s * (_idf(total, df[t]) / _idf(n, local))
            if topics:
                combined *= np.array([c.topic in topics for c in part.chunks])
            for i in np.flatnonzero(combined > 0):
                out[(p, int(i))] = float(combined[i])
        return out

    def _named_keys(self, query: str, topics: tuple[str, ...]) -> list[Key]:
        count: Counter[Key] = Counter()
        for token in set(query_keywords(query)):
            for p, part in enumerate(self.parts):
                for i in part._names.get(token, ()):
                    if not topics or part.chunks[i].topic in topics:
                        count[(p, i)] += 1
        most = max(count.values(), default=0)
        return sorted(key for key, n in count.items() if n == most)

    def _mmr(  # type: ignore[override]
        self, q: np.ndarray, candidates: list[Key], k: int, lambda_mult: float
    ) -> list[Key]:
        if not candidates:
            return []
        vecs = np.stack([self.parts[p]._vector(i) for p, i in candidates])
        relevance = vecs @ q
        chosen: list[int] = []
        while len(chosen) < min(k, len(candidates)):
            redundancy = (
                (vecs @ vecs[chosen].T).max(axis=1) if chosen else np.zeros(len(candidates))
            )
            scores = lambda_mult * relevance - (1 - lambda_mult) * redundancy
            scores[chosen] = -np.inf
            chosen.append(int(np.argmax(scores)))
        return [candidates[j] for j in chosen]


Key = tuple[int, int]
"""(part, chunk position in that part)."""


def _idf(n: int, df: int) -> float:
    """Lucene's BM25 IDF (bm25s' default)."""
    return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def _fuse_keys(
    dense: list[Key], keyword: dict[Key, float], fetch_k: int, named: list[Key]
) -> list[Key]:
    """`KnowledgeIndex._fuse` over keys: reciprocal-rank fusion of the dense, keyword and
    rare-name rankings, ties to the better keyword score."""
    fused: dict[Key, float] = {}
    top_keyword = sorted(keyword, key=lambda key: -keyword[key])[:fetch_k]
    for ranking in (dense, top_keyword, named[:fetch_k]):
        for rank, key in enumerate(ranking):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
    return sorted(fused, key=lambda key: (-fused[key], -keyword.get(key, 0.0)))


class Catalog:
    """The partner datasets' indexes of this process, kept in step with the store."""

    def __init__(self, bundled: Callable[[], KnowledgeIndex], embeddings: Embeddings) -> None:
        self._bundled = bundled
        self.embeddings = embeddings
        self._indexes: dict[str, KnowledgeIndex] = {}
        self.versions: dict[str, int] = {}
        """Dataset id -> the store version its index here was built from."""
        self._lock = threading.Lock()

    def apply(self, dataset_id: str, version: int, index: KnowledgeIndex | None) -> None:
        """Install a dataset's index (None: the dataset is empty or gone)."""
        with self._lock:
            if index is None or not index.chunks:
                self._indexes.pop(dataset_id, None)
            else:
                self._indexes[dataset_id] = index
            self.versions[dataset_id] = version

    def forget(self, dataset_id: str) -> None:
        with self._lock:
            self._indexes.pop(dataset_id, None)
            self.versions.pop(dataset_id, None)

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
        return ScopedIndex(parts, self.embeddings)


def dataset_index(
    dataset_id: str,
    chunks: list[Chunk],
    vectors: np.ndarray,
    sentence_vectors: np.ndarray,
    embeddings: Embeddings,
    version: int,
    *,
    sentences: Sequence[list[tuple[str, str]]] | None = None,
) -> KnowledgeIndex:
    """`sentences`: each chunk's `chunk_sentences`, when the caller has them already."""
    return KnowledgeIndex(
        chunks,
        vectors,
        embeddings=embeddings,
        content_hash=f"{dataset_id}@{version}",
        sentence_vectors=sentence_vectors,
        sentences=sentences,
    )


def sentence_count(chunk: Chunk) -> int:
    return len(chunk_sentences(chunk))
