"""Partners' datasets and documents: ingest into the store, and every replica's indexes kept in
step with it.

Writes go to the store first (one transaction: the document, its chunks and vectors, the
dataset's version), then this process reloads that dataset at once; every other replica notices
the new version at its next poll (`follow`, every `ALIM_KNOWLEDGE_POLL_SECONDS`) and reloads it
from the stored vectors: nothing is embedded twice. A replica that starts loads every dataset
the same way. A document stored under another embedder (or another sentence splitter) is
embedded again once, and its vectors written back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.errors import NotFound
from alim.knowledge.catalog import Catalog, dataset_index
from alim.knowledge.documents import Article
from alim.knowledge.index import (
    BUNDLED,
    Chunk,
    KnowledgeIndex,
    chunk_articles,
    chunk_pages,
    chunk_sentences,
    embed_chunks,
)
from alim.knowledge.service import KnowledgeService, validated_article
from alim.knowledge.store import (
    ChunkRow,
    Dataset,
    KnowledgeStore,
    StoredChunk,
    StoredDocument,
    from_bytes,
    refuse_bundled,
)
from alim.knowledge.terms import ChunkTerms, chunk_terms
from alim.timeutil import now_iso

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """Where a document came from (a file upload), besides its article fields."""

    filename: str | None = None
    file_type: str | None = None
    pages: tuple[str, ...] | None = None
    """The text of each page (PDFs): chunks then carry their page number."""


def document_hash(article: Article) -> str:
    """What makes two documents identical: their title, language, topic, tags and text."""
    h = hashlib.sha256()
    for part in (article.title, article.language, article.topic, ",".join(article.tags)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    h.update(article.content.strip().encode("utf-8"))
    return h.hexdigest()


def _embedded(
    chunks: list[Chunk],
    embeddings: Embeddings,
    progress: Callable[[int, int], None] | None = None,
    terms: list[ChunkTerms] | None = None,
) -> list[StoredChunk]:
    """The chunks as stored: embedded (each chunk and its sentences), with their terms."""
    if terms is None:
        terms = chunk_terms(chunks, [chunk_sentences(c) for c in chunks])
    vectors, sentences = embed_chunks(chunks, embeddings, progress=progress, batch_size=16)
    starts = np.cumsum([0] + [len(t.sentences) for t in terms]).tolist()
    return [
        StoredChunk(
            c.article_id,
            c.position,
            c.text,
            c.page,
            vectors[i],
            sentences[starts[i] : starts[i + 1]],
            t.dumps(),
        )
        for i, (c, t) in enumerate(zip(chunks, terms, strict=True))
    ]


@dataclass(frozen=True)
class Loaded:
    """A dataset's index built from the store, and what had to be computed again for it."""

    index: KnowledgeIndex | None
    embedded: list[tuple[StoredDocument, list[StoredChunk]]]
    """Documents embedded again (stored under another embedder, or split into sentences
    differently): their vectors and terms go back to the store."""
    termed: list[tuple[StoredDocument, list[tuple[int, str]]]]
    """Documents whose chunks' terms were computed again (stored without them, or with terms
    of another version): (chunk index, terms) go back to the store."""


def _known_terms(
    contents: list[tuple[StoredDocument, list[ChunkRow]]], dataset_id: str
) -> list[tuple[list[ChunkTerms], bool]]:
    """Each document's chunks' terms, and whether they were computed here (not stored, or
    stored in another version): those are computed together, each distinct word once."""
    stored = [[ChunkTerms.loads(row[5]) for row in rows] for _, rows in contents]
    missing = [
        _chunk(doc, dataset_id, row)
        for (doc, rows), terms in zip(contents, stored, strict=True)
        if None in terms
        for row in rows
    ]
    computed = iter(chunk_terms(missing, [chunk_sentences(c) for c in missing]))
    out: list[tuple[list[ChunkTerms], bool]] = []
    for terms in stored:
        if None in terms:
            out.append(([next(computed) for _ in terms], True))
        else:
            out.append((terms, False))  # type: ignore[arg-type]
    return out


def _chunk(doc: StoredDocument, dataset_id: str, row: ChunkRow) -> Chunk:
    index, text, page, *_ = row
    return Chunk(
        id=f"{doc.id}#{index}",
        article_id=doc.id,
        group=doc.id,
        title=doc.title,
        language=doc.language,
        topic=doc.topic,
        text=text,
        tags=", ".join(doc.tags),
        page=page,
        dataset=dataset_id,
    )


def build_dataset(
    dataset_id: str,
    version: int,
    contents: list[tuple[StoredDocument, list[ChunkRow]]],
    embeddings: Embeddings,
    dim: int,
) -> Loaded:
    """A dataset's index from its stored chunks, vectors and terms (nothing is embedded or
    read again unless it was stored under another embedder, splitter or terms version)."""
    name = embedder_name(embeddings)
    chunks: list[Chunk] = []
    terms: list[ChunkTerms] = []
    vectors: list[np.ndarray] = []
    sentences: list[np.ndarray] = []
    loaded = Loaded(None, [], [])
    known = _known_terms(contents, dataset_id)
    for (doc, rows), stored_terms in zip(contents, known, strict=True):
        doc_chunks = [_chunk(doc, dataset_id, row) for row in rows]
        doc_terms, termed = stored_terms
        stored: list[StoredChunk] | None = None
        if doc.embedder == name:
            try:
                stored = [
                    StoredChunk(
                        doc.id, index, text, page, from_bytes(v, dim)[0], from_bytes(s, dim)
                    )
                    for index, text, page, v, s, _ in rows
                ]
            except (ValueError, IndexError):
                stored = None
            if stored is not None and any(
                len(s.sentence_vectors) != len(t.sentences)
                for s, t in zip(stored, doc_terms, strict=True)
            ):
                stored = None
        if stored is None:
            log.info("embedding document %s again (%d chunks)", doc.id, len(doc_chunks))
            stored = _embedded(doc_chunks, embeddings, terms=doc_terms)
            loaded.embedded.append((doc, stored))
        elif termed:
            loaded.termed.append(
                (doc, [(s.chunk_index, t.dumps()) for s, t in zip(stored, doc_terms, strict=True)])
            )
        chunks.extend(doc_chunks)
        terms.extend(doc_terms)
        vectors.extend(s.vector.reshape(1, -1) for s in stored)
        sentences.extend(s.sentence_vectors for s in stored)
    if not chunks:
        return loaded
    index = dataset_index(
        dataset_id,
        chunks,
        np.vstack(vectors).astype("float32"),
        np.vstack(sentences).astype("float32"),
        embeddings,
        version,
        terms=terms,
    )
    return replace(loaded, index=index)


class PartnerKnowledge:
    """Partners' datasets and documents over the store, and this process's indexes of them."""

    def __init__(self, store: KnowledgeStore, service: KnowledgeService) -> None:
        self.store = store
        self.service = service
        self.catalog: Catalog = service.catalog
        self._refresh_lock = asyncio.Lock()

    @property
    def embeddings(self) -> Embeddings:
        return self.service.embeddings

    # ------------------------------------------------------------------ scope
    async def scope(
        self,
        partner: str,
        requested: Sequence[str] | None,
        include_bundled: bool = True,
        *,
        skip_missing: bool = False,
    ) -> tuple[str, ...]:
        """The datasets a partner's turn searches: the requested ones (404
        `dataset_not_found` for one that is not the partner's, or left out with
        `skip_missing`: the assistant's defaults may name one deleted since) or, when none are
        named, all of the partner's; with the bundled base unless `include_bundled` is false."""
        owned = await self.store.dataset_ids(partner)
        chosen: list[str] = []
        for dataset_id in requested if requested is not None else owned:
            if dataset_id == BUNDLED:
                include_bundled = True
            elif dataset_id in owned:
                chosen.append(dataset_id)
            elif not skip_missing:
                raise NotFound("dataset not found", code="dataset_not_found")
        return ((BUNDLED,) if include_bundled else ()) + tuple(dict.fromkeys(chosen))

    # ------------------------------------------------------------------ datasets
    async def create_dataset(
        self, partner: str, name: str, description: str = "", language: str | None = None
    ) -> Dataset:
        return await self.store.create_dataset(partner, name, description, language)

    async def delete_dataset(self, partner: str, dataset_id: str) -> None:
        refuse_bundled(dataset_id)
        await self.store.delete_dataset(partner, dataset_id)
        await self.refresh()

    async def target(self, partner: str, dataset_id: str | None) -> Dataset:
        """The dataset an ingest goes to: the named one (the partner's), else the default."""
        if dataset_id is None:
            return await self.store.default_dataset(partner)
        refuse_bundled(dataset_id)
        return await self.store.dataset(partner, dataset_id)

    # ------------------------------------------------------------------ documents
    async def add(
        self,
        partner: str,
        dataset_id: str | None,
        *,
        title: str,
        content: str,
        language: str,
        tags: list[str] | None = None,
        topic: str = "",
        external_id: str | None = None,
        upload: Upload | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[StoredDocument, bool]:
        """Store and index a document; (document, created). The same content already in the
        dataset is not stored again (that document comes back, created False); a document
        with the `external_id` of one in the dataset replaces it."""
        dataset = await self.target(partner, dataset_id)
        upload = upload or Upload()
        article = await asyncio.to_thread(
            validated_article,
            title=title,
            content=content,
            language=language,
            tags=tags,
            topic=topic,
        )
        digest = document_hash(article)
        same = await self.store.find_duplicate(dataset.id, digest)
        if same is not None and external_id in (None, same.external_id):
            return same, False
        chunks = (
            chunk_pages(article, upload.pages, dataset.id)
            if upload.pages
            else chunk_articles([article], dataset.id)
        )
        stored = await asyncio.to_thread(_embedded, chunks, self.embeddings, progress)
        now = now_iso("seconds")
        doc = StoredDocument(
            id=article.id,
            dataset_id=dataset.id,
            partner=partner,
            external_id=external_id,
            title=article.title,
            language=article.language,
            topic=article.topic,
            tags=article.tags,
            filename=upload.filename,
            file_type=upload.file_type,
            page_count=len(upload.pages) if upload.pages else None,
            content=article.content,
            content_hash=digest,
            embedder=embedder_name(self.embeddings),
            chunk_count=len(chunks),
            created_at=now,
            updated_at=now,
        )
        await self.store.put_document(doc, stored)
        await self.refresh(only=dataset.id)
        log.info("ingested article %s into dataset %s (%d chunks)", doc.id, dataset.id, len(chunks))
        return doc, True

    async def delete(self, partner: str, document_id: str) -> None:
        doc = await self.store.delete_document(partner, document_id)
        await self.refresh(only=doc.dataset_id)

    # ------------------------------------------------------------------ sync
    async def refresh(self, only: str | None = None) -> list[str]:
        """Reload the datasets whose store version differs from the one loaded here (`only`:
        just that one); forget the datasets gone from the store. Returns those reloaded."""
        async with self._refresh_lock:
            versions = await self.store.versions()
            for gone in set(self.catalog.versions) - set(versions):
                self.catalog.forget(gone)
            reloaded: list[str] = []
            for dataset_id, version in versions.items():
                if only is not None and dataset_id != only:
                    continue
                if self.catalog.versions.get(dataset_id) == version:
                    continue
                await self._load(dataset_id, version)
                reloaded.append(dataset_id)
            return reloaded

    async def _load(self, dataset_id: str, version: int) -> None:
        contents = await self.store.dataset_contents(dataset_id)
        dim = await asyncio.to_thread(lambda: self.service.index.dim)
        loaded = await asyncio.to_thread(
            build_dataset, dataset_id, version, contents, self.embeddings, dim
        )
        for doc, stored in loaded.embedded:
            await self.store.replace_vectors(doc.id, embedder_name(self.embeddings), stored)
        for doc, terms in loaded.termed:
            await self.store.replace_terms(doc.id, terms)
        self.catalog.apply(dataset_id, version, loaded.index)

    async def follow(self, interval: float, stopping: Callable[[], bool] = lambda: False) -> None:
        """Poll the store for other replicas' changes until cancelled."""
        while not stopping():
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be down a while: keep polling
                log.warning("knowledge sync failed: %s", exc)
