"""Partners' knowledge in the conversation store's database: datasets, documents, chunks and
their embeddings. The source of truth that every replica's in-memory index follows
(`alim.knowledge.catalog`).

- `alim_datasets`: a partner's named collection of documents. `version` grows with every change
  to the dataset's documents: a replica compares it with the version it has loaded (one cheap
  query per poll) and reloads only the datasets that changed.
- `alim_kb_documents`: one document (an article, an upload): its text and where it came from.
  `external_id` (the partner's own id) is unique per dataset: re-ingesting it replaces the
  document; `content_hash` finds identical content already stored in the dataset.
- `alim_kb_chunks`: the document's chunks with their vectors (float32 bytes) and the vectors of
  their sentences (n × dimension float32 bytes), so that no replica embeds them again, and
  their `terms` (`alim.knowledge.terms.ChunkTerms`: keyword tokens, name evidence, sentence
  stems, as text), so that no replica reads their words again (migration 1; NULL, or of another
  version: computed when the dataset is loaded, and written back).

The bundled knowledge base is not stored here: it is the release's, shared and read-only
(`BUNDLED`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from alim.db import Database, Row
from alim.errors import Conflict, NotFound
from alim.migrations import MigratedStore, Migration
from alim.timeutil import now_iso

BUNDLED = "bundled"
"""The dataset id of the release's own knowledge base (shared by every partner, read-only)."""
DEFAULT_NAME = "default"

_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_datasets (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        name TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        language TEXT,
        is_default INTEGER NOT NULL DEFAULT 0,
        version INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alim_datasets_partner ON alim_datasets (partner)",
    # One default dataset per partner, also when two replicas create it at once.
    "CREATE UNIQUE INDEX IF NOT EXISTS alim_datasets_default ON alim_datasets (partner) "
    "WHERE is_default = 1",
    """CREATE TABLE IF NOT EXISTS alim_kb_documents (
        id TEXT PRIMARY KEY,
        dataset_id TEXT NOT NULL,
        partner TEXT NOT NULL,
        external_id TEXT,
        title TEXT NOT NULL,
        language TEXT NOT NULL,
        topic TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '[]',
        filename TEXT,
        file_type TEXT,
        page_count INTEGER,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        embedder TEXT NOT NULL,
        chunk_count INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS alim_kb_documents_dataset ON alim_kb_documents "
    "(dataset_id, content_hash)",
    "CREATE UNIQUE INDEX IF NOT EXISTS alim_kb_documents_external ON alim_kb_documents "
    "(dataset_id, external_id) WHERE external_id IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS alim_kb_chunks (
        document_id TEXT NOT NULL,
        chunk_index INTEGER NOT NULL,
        dataset_id TEXT NOT NULL,
        text TEXT NOT NULL,
        page_number INTEGER,
        vector BYTEA NOT NULL,
        sentence_vectors BYTEA NOT NULL,
        PRIMARY KEY (document_id, chunk_index)
    )""",
    "CREATE INDEX IF NOT EXISTS alim_kb_chunks_dataset ON alim_kb_chunks (dataset_id)",
]


_V1 = ["ALTER TABLE alim_kb_chunks ADD COLUMN terms TEXT"]


@dataclass(frozen=True)
class Dataset:
    id: str
    partner: str
    name: str
    description: str
    language: str | None
    is_default: bool
    version: int
    created_at: str
    updated_at: str
    documents: int = 0

    @classmethod
    def from_row(cls, row: Row) -> Dataset:
        return cls(
            id=row["id"],
            partner=row["partner"],
            name=row["name"],
            description=row["description"],
            language=row["language"],
            is_default=bool(row["is_default"]),
            version=int(row["version"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            documents=int(row.get("documents") or 0),
        )


@dataclass(frozen=True)
class StoredDocument:
    id: str
    dataset_id: str
    partner: str
    external_id: str | None
    title: str
    language: str
    topic: str
    tags: tuple[str, ...]
    filename: str | None
    file_type: str | None
    page_count: int | None
    content: str
    content_hash: str
    embedder: str
    chunk_count: int
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Row) -> StoredDocument:
        return cls(
            id=row["id"],
            dataset_id=row["dataset_id"],
            partner=row["partner"],
            external_id=row["external_id"],
            title=row["title"],
            language=row["language"],
            topic=row["topic"],
            tags=tuple(json.loads(row["tags"] or "[]")),
            filename=row["filename"],
            file_type=row["file_type"],
            page_count=row["page_count"],
            content=row.get("content") or "",
            content_hash=row["content_hash"],
            embedder=row["embedder"],
            chunk_count=int(row["chunk_count"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class StoredChunk:
    """One chunk as stored: its text, page and vectors (the sentence rows in chunk order)."""

    document_id: str
    chunk_index: int
    text: str
    page_number: int | None
    vector: np.ndarray
    sentence_vectors: np.ndarray
    terms: str | None = None
    """Its `ChunkTerms`, dumped (None: computed when its dataset is loaded)."""


ChunkRow = tuple[int, str, int | None, bytes, bytes, str | None]
"""A stored chunk as loaded: index, text, page, vector bytes, sentence vector bytes, terms."""


def to_bytes(vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(vectors, dtype="<f4").tobytes()


def from_bytes(data: Any, dim: int) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4").reshape(-1, dim)


_DOC_COLUMNS = (
    "id, dataset_id, partner, external_id, title, language, topic, tags, filename, file_type, "
    "page_count, content_hash, embedder, chunk_count, created_at, updated_at"
)


class KnowledgeStore(MigratedStore):
    STORE: ClassVar[str] = "knowledge"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0, _V1]

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ datasets
    async def create_dataset(
        self,
        partner: str,
        name: str,
        description: str = "",
        language: str | None = None,
        *,
        is_default: bool = False,
    ) -> Dataset:
        now = now_iso("seconds")
        row = {
            "id": f"ds-{uuid.uuid4().hex[:16]}",
            "partner": partner,
            "name": name,
            "description": description,
            "language": language,
            "is_default": 1 if is_default else 0,
            "version": 0,
            "created_at": now,
            "updated_at": now,
        }
        await self.db.insert("alim_datasets", row)
        return Dataset.from_row(row)

    async def default_dataset(self, partner: str) -> Dataset:
        """The partner's default dataset, created on first use (where ingests without a
        dataset go, so that calls from before datasets existed keep working)."""
        found = await self.db.fetch_one(
            "SELECT * FROM alim_datasets WHERE partner = ? AND is_default = 1", (partner,)
        )
        if found is not None:
            return Dataset.from_row(found)
        now = now_iso("seconds")
        await self.db.insert(
            "alim_datasets",
            {
                "id": f"ds-{uuid.uuid4().hex[:16]}",
                "partner": partner,
                "name": DEFAULT_NAME,
                "description": "Articles ingested without a dataset.",
                "language": None,
                "is_default": 1,
                "version": 0,
                "created_at": now,
                "updated_at": now,
            },
            "ON CONFLICT DO NOTHING",  # another replica made it first
        )
        found = await self.db.fetch_one(
            "SELECT * FROM alim_datasets WHERE partner = ? AND is_default = 1", (partner,)
        )
        assert found is not None
        return Dataset.from_row(found)

    async def datasets(self, partner: str) -> list[Dataset]:
        rows = await self.db.fetch_all(
            "SELECT d.*, (SELECT COUNT(*) FROM alim_kb_documents k WHERE k.dataset_id = d.id) "
            "AS documents FROM alim_datasets d WHERE d.partner = ? ORDER BY d.created_at, d.id",
            (partner,),
        )
        return [Dataset.from_row(r) for r in rows]

    async def dataset(self, partner: str, dataset_id: str) -> Dataset:
        """The partner's dataset; 404 `dataset_not_found` for another partner's or none."""
        row = await self.db.fetch_one(
            "SELECT d.*, (SELECT COUNT(*) FROM alim_kb_documents k WHERE k.dataset_id = d.id) "
            "AS documents FROM alim_datasets d WHERE d.id = ? AND d.partner = ?",
            (dataset_id, partner),
        )
        if row is None:
            raise NotFound("dataset not found", code="dataset_not_found")
        return Dataset.from_row(row)

    async def dataset_ids(self, partner: str) -> list[str]:
        rows = await self.db.fetch_all(
            "SELECT id FROM alim_datasets WHERE partner = ? ORDER BY id", (partner,)
        )
        return [r["id"] for r in rows]

    async def delete_dataset(self, partner: str, dataset_id: str) -> None:
        await self.dataset(partner, dataset_id)
        async with self.db.transaction():
            await self.db.run("DELETE FROM alim_kb_chunks WHERE dataset_id = ?", (dataset_id,))
            await self.db.run("DELETE FROM alim_kb_documents WHERE dataset_id = ?", (dataset_id,))
            await self.db.run(
                "DELETE FROM alim_datasets WHERE id = ? AND partner = ?", (dataset_id, partner)
            )

    async def versions(self) -> dict[str, int]:
        """Every dataset's version: what a replica polls to know what to reload."""
        rows = await self.db.fetch_all("SELECT id, version FROM alim_datasets")
        return {r["id"]: int(r["version"]) for r in rows}

    # ------------------------------------------------------------------ documents
    async def find_duplicate(self, dataset_id: str, content_hash: str) -> StoredDocument | None:
        row = await self.db.fetch_one(
            f"SELECT {_DOC_COLUMNS} FROM alim_kb_documents "
            "WHERE dataset_id = ? AND content_hash = ? ORDER BY created_at LIMIT 1",
            (dataset_id, content_hash),
        )
        return StoredDocument.from_row(row) if row else None

    async def put_document(self, doc: StoredDocument, chunks: list[StoredChunk]) -> None:
        """Store a document with its chunks in one transaction, replacing the dataset's document
        of the same `external_id` (its chunks go with it), and bump the dataset's version."""
        async with self.db.transaction():
            if doc.external_id is not None:
                old = await self.db.fetch_one(
                    "SELECT id FROM alim_kb_documents WHERE dataset_id = ? AND external_id = ?",
                    (doc.dataset_id, doc.external_id),
                )
                if old is not None:
                    await self._delete_rows(old["id"])
            await self.db.insert(
                "alim_kb_documents",
                {
                    "id": doc.id,
                    "dataset_id": doc.dataset_id,
                    "partner": doc.partner,
                    "external_id": doc.external_id,
                    "title": doc.title,
                    "language": doc.language,
                    "topic": doc.topic,
                    "tags": json.dumps(list(doc.tags), ensure_ascii=False),
                    "filename": doc.filename,
                    "file_type": doc.file_type,
                    "page_count": doc.page_count,
                    "content": doc.content,
                    "content_hash": doc.content_hash,
                    "embedder": doc.embedder,
                    "chunk_count": doc.chunk_count,
                    "created_at": doc.created_at,
                    "updated_at": doc.updated_at,
                },
            )
            for c in chunks:
                await self.db.insert(
                    "alim_kb_chunks",
                    {
                        "document_id": doc.id,
                        "chunk_index": c.chunk_index,
                        "dataset_id": doc.dataset_id,
                        "text": c.text,
                        "page_number": c.page_number,
                        "vector": to_bytes(c.vector),
                        "sentence_vectors": to_bytes(c.sentence_vectors),
                        "terms": c.terms,
                    },
                )
            await self._bump(doc.dataset_id)

    async def documents(self, partner: str, dataset_id: str | None = None) -> list[StoredDocument]:
        """The partner's documents (of one dataset), without their text."""
        sql = f"SELECT {_DOC_COLUMNS} FROM alim_kb_documents WHERE partner = ?"
        params: tuple[Any, ...] = (partner,)
        if dataset_id is not None:
            sql += " AND dataset_id = ?"
            params += (dataset_id,)
        rows = await self.db.fetch_all(sql + " ORDER BY created_at, id", params)
        return [StoredDocument.from_row(r) for r in rows]

    async def document(self, partner: str, document_id: str) -> StoredDocument:
        """The partner's document with its text; 404 `document_not_found` otherwise."""
        row = await self.db.fetch_one(
            f"SELECT {_DOC_COLUMNS}, content FROM alim_kb_documents WHERE id = ? AND partner = ?",
            (document_id, partner),
        )
        if row is None:
            raise NotFound("document not found", code="document_not_found")
        return StoredDocument.from_row(row)

    async def chunk(
        self, partner: str, document_id: str, chunk_index: int
    ) -> tuple[StoredDocument, str, int | None]:
        """(document, chunk text, page number); 404 `chunk_not_found` past the last chunk."""
        doc = await self.document(partner, document_id)
        row = await self.db.fetch_one(
            "SELECT text, page_number FROM alim_kb_chunks "
            "WHERE document_id = ? AND chunk_index = ?",
            (document_id, chunk_index),
        )
        if row is None:
            raise NotFound("no such chunk in this document", code="chunk_not_found")
        return doc, row["text"], row["page_number"]

    async def delete_document(self, partner: str, document_id: str) -> StoredDocument:
        doc = await self.document(partner, document_id)
        async with self.db.transaction():
            await self._delete_rows(document_id)
            await self._bump(doc.dataset_id)
        return doc

    async def _delete_rows(self, document_id: str) -> None:
        await self.db.run("DELETE FROM alim_kb_chunks WHERE document_id = ?", (document_id,))
        await self.db.run("DELETE FROM alim_kb_documents WHERE id = ?", (document_id,))

    async def _bump(self, dataset_id: str) -> None:
        await self.db.run(
            "UPDATE alim_datasets SET version = version + 1, updated_at = ? WHERE id = ?",
            (now_iso("seconds"), dataset_id),
        )

    # ------------------------------------------------------------------ loading
    async def dataset_contents(
        self, dataset_id: str
    ) -> list[tuple[StoredDocument, list[ChunkRow]]]:
        """Every document of a dataset with its chunk rows (index, text, page, vector bytes,
        sentence vector bytes, terms), in a stable order."""
        docs = [
            StoredDocument.from_row(r)
            for r in await self.db.fetch_all(
                f"SELECT {_DOC_COLUMNS} FROM alim_kb_documents WHERE dataset_id = ? "
                "ORDER BY created_at, id",
                (dataset_id,),
            )
        ]
        rows = await self.db.fetch_all(
            "SELECT document_id, chunk_index, text, page_number, vector, sentence_vectors, terms "
            "FROM alim_kb_chunks WHERE dataset_id = ? ORDER BY document_id, chunk_index",
            (dataset_id,),
        )
        by_doc: dict[str, list[ChunkRow]] = {}
        for r in rows:
            by_doc.setdefault(r["document_id"], []).append(
                (
                    int(r["chunk_index"]),
                    r["text"],
                    r["page_number"],
                    bytes(r["vector"]),
                    bytes(r["sentence_vectors"]),
                    r["terms"],
                )
            )
        return [(d, by_doc.get(d.id, [])) for d in docs]

    async def replace_vectors(
        self, document_id: str, embedder: str, chunks: list[StoredChunk]
    ) -> None:
        """Store vectors (and terms) re-computed with another embedder or sentence splitter (no
        version bump: same content)."""
        async with self.db.transaction():
            for c in chunks:
                await self.db.run(
                    "UPDATE alim_kb_chunks SET vector = ?, sentence_vectors = ?, terms = ? "
                    "WHERE document_id = ? AND chunk_index = ?",
                    (
                        to_bytes(c.vector),
                        to_bytes(c.sentence_vectors),
                        c.terms,
                        document_id,
                        c.chunk_index,
                    ),
                )
            await self.db.run(
                "UPDATE alim_kb_documents SET embedder = ? WHERE id = ?", (embedder, document_id)
            )

    async def replace_terms(self, document_id: str, terms: list[tuple[int, str]]) -> None:
        """Store a document's chunks' terms computed again: (chunk index, terms)."""
        async with self.db.transaction():
            for chunk_index, text in terms:
                await self.db.run(
                    "UPDATE alim_kb_chunks SET terms = ? WHERE document_id = ? AND chunk_index = ?",
                    (text, document_id, chunk_index),
                )


def refuse_bundled(dataset_id: str) -> None:
    if dataset_id == BUNDLED:
        raise Conflict(
            "the bundled knowledge base is shared and read-only", code="bundled_read_only"
        )
