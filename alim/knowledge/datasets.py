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
from dataclasses import dataclass

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.errors import NotFound
from alim.knowledge.catalog import Catalog, dataset_index, sentence_count
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
    Dataset,
    KnowledgeStore,
    StoredChunk,
    StoredDocument,
    from_bytes,
    refuse_bundled,
)
from alim.timeutil import now_iso

log = logging.getLogger(__name__)

ChunkRow = tuple[int, str, int | None, bytes, bytes]


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


def _split_sentences(chunks: list[Chunk], sentence_vectors: np.ndarray) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    start = 0
    for c in chunks:
        n = sentence_count(c)
        out.append(sentence_vectors[start : start + n])
        start += n
    return out


def _embedded(
    chunks: list[Chunk],
    embeddings: Embeddings,
    progress: Callable[[int, int], None] | None = None,
) -> list[StoredChunk]:
    vectors, sentences = embed_chunks(chunks, embeddings, progress=progress, batch_size=16)
    return [
        StoredChunk(c.article_id, c.position, c.text, c.page, vectors[i], rows)
        for i, (c, rows) in enumerate(zip(chunks, _split_sentences(chunks, sentences), strict=True))
    ]


def build_dataset(
    dataset_id: str,
    version: int,
    contents: list[tuple[StoredDocument, list[ChunkRow]]],
    embeddings: Embeddings,
    dim: int,
) -> tuple[KnowledgeIndex | None, list[tuple[StoredDocument, list[StoredChunk]]]]:
    """A dataset's index from its stored chunks, and the documents that had to be embedded
    again (stored under another embedder, or split into sentences differently)."""
    name = embedder_name(embeddings)
    chunks: list[Chunk] = []
    found: list[list[tuple[str, str]]] = []
    vectors: list[np.ndarray] = []
    sentences: list[np.ndarray] = []
    again: list[tuple[StoredDocument, list[StoredChunk]]] = []
    for doc, rows in contents:
        doc_chunks = [
            Chunk(
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
            for index, text, page, _, _ in rows
        ]
        doc_sentences = [chunk_sentences(c) for c in doc_chunks]
        stored: list[StoredChunk] | None = None
        if doc.embedder == name:
            try:
                stored = [
                    StoredChunk(
                        doc.id, index, text, page, from_bytes(v, dim)[0], from_bytes(s, dim)
                    )
                    for index, text, page, v, s in rows
                ]
            except (ValueError, IndexError):
                stored = None
            if stored is not None and any(
                len(s.sentence_vectors) != len(pairs)
                for s, pairs in zip(stored, doc_sentences, strict=True)
            ):
                stored = None
        if stored is None:
            log.info("embedding document %s again (%d chunks)", doc.id, len(doc_chunks))
            stored = _embedded(doc_chunks, embeddings)
            again.append((doc, stored))
        chunks.extend(doc_chunks)
        found.extend(doc_sentences)
        vectors.extend(s.vector.reshape(1, -1) for s in stored)
        sentences.extend(s.sentence_vectors for s in stored)
    if not chunks:
        return None, again
    index = dataset_index(
        dataset_id,
        chunks,
        np.vstack(vectors).astype("float32"),
        np.vstack(sentences).astype("float32"),
        embeddings,
        version,
        sentences=found,
    )
    return index, again


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
        index, again = await asyncio.to_thread(
            build_dataset, dataset_id, version, contents, self.embeddings, dim
        )
        for doc, stored in again:
            await self.store.replace_vectors(doc.id, embedder_name(self.embeddings), stored)
        self.catalog.apply(dataset_id, version, index)

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
