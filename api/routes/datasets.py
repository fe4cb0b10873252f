"""`/api/v1/datasets` (`admin` scope): a partner's own collections of documents.

The bundled base (`bundled`) is listed first, shared and read-only. Every other dataset belongs
to the partner that created it: another partner's id answers 404, as one that never existed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from alim.knowledge.index import BUNDLED
from alim.knowledge.store import Dataset, StoredDocument, refuse_bundled
from api.deps import AdminPartner, DepsDep, EngineDep
from api.routes.knowledge import knowledge_of
from api.schemas import ErrorBody, Strict

router = APIRouter(prefix="/datasets", tags=["datasets"])
DatasetId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$")]


class DatasetIn(Strict):
    name: str = Field(min_length=1, max_length=100, examples=["Ministry guidance 2025"])
    description: str = Field("", max_length=1000, examples=["Circulars for cotton growers"])
    language: Literal["az", "en", "ru"] | None = Field(
        None, description="The language of its documents, if one (informative)."
    )


class DatasetOut(BaseModel):
    id: str = Field(examples=["ds-3f2a9c1e5b7d4a60"])
    name: str
    description: str
    language: str | None
    read_only: bool = Field(False, description="The bundled base: shared by every partner.")
    is_default: bool = Field(
        False, description="Where articles ingested without a `dataset_id` go."
    )
    documents: int = Field(0, description="Documents it holds.")
    created_at: str | None = None
    updated_at: str | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetOut]


class DocumentSummary(BaseModel):
    id: str
    title: str
    language: str
    external_id: str | None
    filename: str | None
    chunks: int
    created_at: str


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


def _out(d: Dataset) -> DatasetOut:
    return DatasetOut(
        id=d.id,
        name=d.name,
        description=d.description,
        language=d.language,
        read_only=False,
        is_default=d.is_default,
        documents=d.documents,
        created_at=d.created_at,
        updated_at=d.updated_at,
    )


def _bundled(count: int) -> DatasetOut:
    return DatasetOut(
        id=BUNDLED,
        name="ALİM knowledge base",
        description="The agronomy articles that ship with ALİM (az, en, ru).",
        language=None,
        read_only=True,
        is_default=False,
        documents=count,
    )


def _summary(d: StoredDocument) -> DocumentSummary:
    return DocumentSummary(
        id=d.id,
        title=d.title,
        language=d.language,
        external_id=d.external_id,
        filename=d.filename,
        chunks=d.chunk_count,
        created_at=d.created_at,
    )


@router.post("", response_model=DatasetOut, status_code=201)
async def create_dataset(body: DatasetIn, partner: AdminPartner, engine: EngineDep) -> DatasetOut:
    """Create a dataset; add documents with `POST /documents` or `POST /knowledge`."""
    created = await knowledge_of(engine).create_dataset(
        partner.name, body.name, body.description, body.language
    )
    return _out(created)


@router.get("", response_model=DatasetList)
async def list_datasets(partner: AdminPartner, engine: EngineDep, deps: DepsDep) -> DatasetList:
    """The bundled base, then your datasets (oldest first)."""
    own = await knowledge_of(engine).store.datasets(partner.name)
    return DatasetList(
        datasets=[_bundled(len(deps.knowledge().articles())), *(_out(d) for d in own)]
    )


@router.get("/{dataset_id}", response_model=DatasetOut, responses={404: {"model": ErrorBody}})
async def get_dataset(
    dataset_id: DatasetId, partner: AdminPartner, engine: EngineDep, deps: DepsDep
) -> DatasetOut:
    if dataset_id == BUNDLED:
        return _bundled(len(deps.knowledge().articles()))
    return _out(await knowledge_of(engine).store.dataset(partner.name, dataset_id))


@router.get(
    "/{dataset_id}/documents", response_model=DocumentList, responses={404: {"model": ErrorBody}}
)
async def list_documents(
    dataset_id: DatasetId, partner: AdminPartner, engine: EngineDep
) -> DocumentList:
    refuse_bundled(dataset_id)  # the bundled articles: GET /knowledge?source=bundled
    store = knowledge_of(engine).store
    await store.dataset(partner.name, dataset_id)
    return DocumentList(
        documents=[_summary(d) for d in await store.documents(partner.name, dataset_id)]
    )


@router.delete(
    "/{dataset_id}",
    status_code=204,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def delete_dataset(
    dataset_id: DatasetId, partner: AdminPartner, engine: EngineDep
) -> Response:
    """Delete a dataset with all its documents; they leave retrieval at once."""
    await knowledge_of(engine).delete_dataset(partner.name, dataset_id)
    return Response(status_code=204)
