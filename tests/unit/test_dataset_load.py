"""A replica loading a dataset from the store (alim/knowledge/datasets.py `build_dataset`,
store.py): chunks come with their vectors and their terms, so nothing is embedded or read word
by word again; terms stored without (before migration 1) or of another version are computed,
once for the whole dataset, and go back to the store (SQLite and PostgreSQL); chunks split into
sentences differently are embedded again."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiosqlite
import numpy as np
import pytest

from alim.db import PostgresDatabase, SqliteDatabase
from alim.embeddings import embedder_name
from alim.knowledge.datasets import _embedded, build_dataset
from alim.knowledge.index import Chunk, KnowledgeIndex
from alim.knowledge.store import ChunkRow, KnowledgeStore, StoredDocument, to_bytes
from alim.knowledge.terms import ChunkTerms
from alim.persistence import postgres_pool
from bench.scale import synthetic_chunks
from tests.support.fakes import HashingEmbeddings

DIM = 32
EMBEDDINGS = HashingEmbeddings(dim=DIM)
QUERIES = ("pomidor suvarma", "картофель полив", "apple water")


def _document(doc_id: str, chunks: list[Chunk]) -> StoredDocument:
    c = chunks[0]
    return StoredDocument(
        id=doc_id,
        dataset_id="ds-t",
        partner="p",
        external_id=None,
        title=c.title,
        language=c.language,
        topic=c.topic,
        tags=(),
        filename=None,
        file_type=None,
        page_count=None,
        content="",
        content_hash=doc_id,
        embedder=embedder_name(EMBEDDINGS),
        chunk_count=len(chunks),
        created_at="",
        updated_at="",
    )


@pytest.fixture(scope="module")
def contents() -> list[tuple[StoredDocument, list[ChunkRow]]]:
    """Twelve documents of four chunks, as `put_document` stores them."""
    chunks = synthetic_chunks("ds-t", 48, seed=3)
    out = []
    for d in range(12):
        doc_chunks = chunks[4 * d : 4 * d + 4]
        doc_id = doc_chunks[0].article_id
        doc_chunks = [_with_article(c, doc_id, doc_chunks[0].title) for c in doc_chunks]
        stored = _embedded(doc_chunks, EMBEDDINGS)
        rows: list[ChunkRow] = [
            (
                s.chunk_index,
                s.text,
                s.page_number,
                to_bytes(s.vector),
                to_bytes(s.sentence_vectors),
                s.terms,
            )
            for s in stored
        ]
        out.append((_document(doc_id, doc_chunks), rows))
    return out


def _with_article(chunk: Chunk, doc_id: str, title: str) -> Chunk:
    """The chunk as `build_dataset` makes it from its row (title and tags of its document)."""
    return Chunk(
        id=chunk.id,
        article_id=doc_id,
        group=doc_id,
        title=title,
        language=chunk.language,
        topic=chunk.topic,
        text=chunk.text,
        tags="",
        dataset="ds-t",
    )


def _same_search(a: KnowledgeIndex, b: KnowledgeIndex) -> None:
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert a._names == b._names
    assert a._stems.idf == b._stems.idf
    vector = np.random.default_rng(0).standard_normal(DIM).astype("float32")
    for query in QUERIES:
        assert np.array_equal(a._keyword_scores(query), b._keyword_scores(query))
        assert a.search(query) == b.search(query)
        assert a.search_vector(query, vector, _options()) == b.search_vector(
            query, vector, _options()
        )


def _options():  # type: ignore[no-untyped-def]
    from alim.knowledge.index import SearchOptions

    return SearchOptions(k=6)


def test_stored_terms_are_used_as_they_are(
    contents: list[tuple[StoredDocument, list[ChunkRow]]],
) -> None:
    loaded = build_dataset("ds-t", 1, contents, EMBEDDINGS, DIM)
    assert (loaded.embedded, loaded.termed) == ([], [])
    assert loaded.index is not None
    without: list[tuple[StoredDocument, list[ChunkRow]]] = [
        (doc, [(*row[:5], None) for row in rows]) for doc, rows in contents
    ]
    computed = build_dataset("ds-t", 1, without, EMBEDDINGS, DIM)
    assert computed.index is not None
    _same_search(loaded.index, computed.index)
    article = loaded.index.chunks[0].article_id
    assert loaded.index.rank_sentences(QUERIES[0], article) == computed.index.rank_sentences(
        QUERIES[0], article
    )


def test_terms_missing_or_of_another_version_are_computed_and_given_back(
    contents: list[tuple[StoredDocument, list[ChunkRow]]],
) -> None:
    def older(terms: str | None) -> str:
        assert terms is not None
        return terms.replace("alim-terms 1", "alim-terms 0", 1)

    stale = [
        (doc, [(*row[:5], None if d % 2 else older(row[5])) for row in rows])
        for d, (doc, rows) in enumerate(contents)
    ]
    stale[0] = contents[0]  # stored in this version: left alone
    loaded = build_dataset("ds-t", 1, stale, EMBEDDINGS, DIM)
    assert loaded.embedded == []
    assert [doc.id for doc, _ in loaded.termed] == [doc.id for doc, _ in contents[1:]]
    for (_, terms), (_, rows) in zip(loaded.termed, contents[1:], strict=True):
        assert terms == [(row[0], row[5]) for row in rows]  # what ingest stored


def test_chunks_split_into_sentences_differently_are_embedded_again(
    contents: list[tuple[StoredDocument, list[ChunkRow]]],
) -> None:
    doc, rows = contents[2]
    index, text, page, vector, sentences, terms = rows[1]
    one_less = sentences[: -DIM * 4]
    changed = [
        *contents[:2],
        (doc, [rows[0], (index, text, page, vector, one_less, terms), *rows[2:]]),
    ]
    loaded = build_dataset("ds-t", 1, changed, EMBEDDINGS, DIM)
    assert [d.id for d, _ in loaded.embedded] == [doc.id]
    ((_, stored),) = loaded.embedded
    assert [s.terms for s in stored] == [row[5] for row in rows]
    assert [len(s.sentence_vectors) for s in stored] == [
        len(ChunkTerms.loads(row[5]).sentences)  # type: ignore[union-attr]
        for row in rows
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[KnowledgeStore]:
    """A knowledge store at its latest migration, on SQLite or on a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        async with aiosqlite.connect(":memory:") as conn:
            store = KnowledgeStore(SqliteDatabase(conn))
            await store.setup()
            yield store
        return
    import psycopg

    base: str = request.getfixturevalue("postgres_url")
    schema = f"alim_kb_{uuid.uuid4().hex[:10]}"
    async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    pool = postgres_pool(f"{base}?options={quote(f'-c search_path={schema}')}", max_size=2)
    await pool.open(wait=True, timeout=10.0)
    try:
        store = KnowledgeStore(PostgresDatabase(pool))
        await store.setup()
        yield store
    finally:
        await pool.close()
        async with await psycopg.AsyncConnection.connect(base, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_the_store_keeps_a_chunks_terms_and_takes_them_back(
    store: KnowledgeStore, contents: list[tuple[StoredDocument, list[ChunkRow]]]
) -> None:
    dataset = await store.create_dataset("p", "Pambıq")
    doc = StoredDocument(**{**contents[0][0].__dict__, "dataset_id": dataset.id})
    chunks = [_with_article(c, doc.id, doc.title) for c in synthetic_chunks("ds-t", 4, seed=3)]
    stored = _embedded(chunks, EMBEDDINGS)
    await store.put_document(doc, stored)
    ((_, loaded),) = await store.dataset_contents(dataset.id)
    assert [row[5] for row in loaded] == [s.terms for s in stored]

    await store.replace_terms(doc.id, [(0, "new terms")])
    ((_, loaded),) = await store.dataset_contents(dataset.id)
    assert [row[5] for row in loaded] == ["new terms", *(s.terms for s in stored[1:])]
