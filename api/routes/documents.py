"""`/api/v1/documents` (`admin` scope): files uploaded into a dataset (Markdown, plain text,
PDF, DOCX, HTML), their text and their chunks (as in the peer RAG API, seed 004).

An upload is searchable at once; `DELETE` takes it out of retrieval at once (every replica
within the sync interval). A document of another partner is 404, as one that never existed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from alim.knowledge.store import StoredDocument
from alim.knowledge.uploads import UnsupportedDocument
from api import idempotency
from api.deps import AdminPartner, EngineDep
from api.routes.knowledge import form_upload, knowledge_of
from api.schemas import ErrorBody

router = APIRouter(prefix="/documents", tags=["documents"])
DocumentId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,120}$")]
ChunkIndex = Annotated[int, Path(ge=0, le=1_000_000)]


class DocumentMetadata(BaseModel):
    filename: str | None = Field(None, examples=["pambiq-2025.pdf"])
    file_type: str | None = Field(
        None,
        examples=["pdf"],
        description="markdown, text, pdf, docx or html (none for articles sent as JSON).",
    )
    page_count: int | None = Field(None, description="PDFs: their pages.")
    total_chunks: int
    external_id: str | None = None
    language: str
    topic: str = ""
    tags: list[str] = Field(default_factory=list)


class DocumentOut(BaseModel):
    id: str
    dataset_id: str
    title: str
    filename: str | None = None
    content: str | None = Field(None, description="The extracted text (`GET` only).")
    created_at: str
    created: bool = Field(
        True,
        description="False when the dataset already held the same content (that one is "
        "returned, nothing is stored twice).",
    )
    metadata: DocumentMetadata


class ChunkMetadata(BaseModel):
    filename: str | None
    document_id: str
    dataset_id: str
    chunk_index: int
    page_number: int | None = Field(None, description="PDFs: the chunk's page, from 1.")
    total_chunks: int


class ChunkOut(BaseModel):
    document_id: str
    chunk_index: int
    content: str
    metadata: ChunkMetadata


def document_out(
    d: StoredDocument, *, with_content: bool = False, created: bool = True
) -> DocumentOut:
    return DocumentOut(
        id=d.id,
        dataset_id=d.dataset_id,
        title=d.title,
        filename=d.filename,
        content=d.content if with_content else None,
        created_at=d.created_at,
        created=created,
        metadata=DocumentMetadata(
            filename=d.filename,
            file_type=d.file_type,
            page_count=d.page_count,
            total_chunks=d.chunk_count,
            external_id=d.external_id,
            language=d.language,
            topic=d.topic,
            tags=list(d.tags),
        ),
    )


UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "`dataset_not_found`."},
    409: {"model": ErrorBody, "description": "`bundled_read_only`."},
    413: {"model": ErrorBody, "description": "`payload_too_large` (ALIM_MAX_UPLOAD_BYTES)."},
    415: {"model": ErrorBody, "description": "`unsupported_document`."},
    422: {
        "model": ErrorBody,
        "description": "`empty_document`, `invalid_document` (unreadable, binary, a DTD), "
        "`document_too_large` (too many pages, too much text, a DOCX that expands too much), "
        "`document_too_slow` (its text could not be read within ALIM_UPLOAD_PARSE_SECONDS), "
        "`too_short`, `unsupported_language`, `missing_file`.",
    },
}


@router.post(
    "",
    response_model=DocumentOut,
    status_code=201,
    responses=UPLOAD_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "dataset_id": {
                                "type": "string",
                                "description": "One of your datasets; omitted: your default.",
                            },
                            "external_id": {
                                "type": "string",
                                "description": "Your id: uploading it again replaces it.",
                            },
                            "title": {"type": "string"},
                            "language": {"type": "string", "enum": ["az", "en", "ru"]},
                            "tags": {"type": "string", "description": "comma-separated"},
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
async def upload_document(
    request: Request,
    partner: AdminPartner,
    engine: EngineDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> Any:
    """Upload a file (.md, .txt, .pdf, .docx, .html) into a dataset; searchable at once."""
    raw = await request.body()

    async def act() -> DocumentOut:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise UnsupportedDocument("send multipart/form-data with a 'file' part")
        fields = await form_upload(request, engine.settings.upload_parse_seconds)
        dataset_id = fields.pop("dataset_id")
        doc, created = await knowledge_of(engine).add(partner.name, dataset_id, **fields)
        return document_out(doc, created=created)

    return await idempotency.once(request, engine.runs.store, partner.name, raw, act, 201)


@router.get("/{document_id}", response_model=DocumentOut, responses={404: {"model": ErrorBody}})
async def get_document(
    document_id: DocumentId, partner: AdminPartner, engine: EngineDep
) -> DocumentOut:
    """A document's metadata and extracted text."""
    doc = await knowledge_of(engine).store.document(partner.name, document_id)
    return document_out(doc, with_content=True)


@router.get(
    "/{document_id}/chunks/{chunk_index}",
    response_model=ChunkOut,
    responses={404: {"model": ErrorBody}},
)
async def get_chunk(
    document_id: DocumentId, chunk_index: ChunkIndex, partner: AdminPartner, engine: EngineDep
) -> ChunkOut:
    """One chunk of a document, as retrieval saw it (a citation's `chunk_index`)."""
    doc, text, page = await knowledge_of(engine).store.chunk(partner.name, document_id, chunk_index)
    return ChunkOut(
        document_id=doc.id,
        chunk_index=chunk_index,
        content=text,
        metadata=ChunkMetadata(
            filename=doc.filename,
            document_id=doc.id,
            dataset_id=doc.dataset_id,
            chunk_index=chunk_index,
            page_number=page,
            total_chunks=doc.chunk_count,
        ),
    )


@router.delete("/{document_id}", status_code=204, responses={404: {"model": ErrorBody}})
async def delete_document(
    document_id: DocumentId, partner: AdminPartner, engine: EngineDep
) -> Response:
    """Delete a document; it leaves retrieval at once."""
    await knowledge_of(engine).delete(partner.name, document_id)
    return Response(status_code=204)
