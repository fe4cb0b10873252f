"""Knowledge ingest and browsing (`admin` scope): JSON articles or .md/.txt/.pdf uploads.

Each partner sees the bundled base and its own articles only; an article goes into the dataset
named by `dataset_id`, else into the partner's default dataset (`/api/v1/datasets`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alim.errors import Conflict, InvalidRequest, NotFound
from alim.knowledge.datasets import PartnerKnowledge, Upload
from alim.knowledge.documents import Article
from alim.knowledge.index import BUNDLED
from alim.knowledge.parsing import parse_upload_in_worker
from alim.knowledge.store import StoredDocument
from alim.knowledge.uploads import UnsupportedDocument
from api import idempotency
from api.deps import AdminPartner, DepsDep, EngineDep
from api.schemas import ErrorBody
from engine import Engine

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
ArticleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,120}$")]


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200, examples=["Badımcanın damcı suvarılması"])
    content: str = Field(min_length=1, max_length=200_000, description="Markdown or plain text.")
    language: Literal["az", "en", "ru"] = Field(examples=["az"])
    tags: list[str] = Field(default_factory=list, max_length=30)
    topic: str = Field("", max_length=40, examples=["irrigation"])
    dataset_id: str | None = Field(
        None,
        max_length=64,
        description="One of your datasets; omitted: your default dataset (created on first use).",
    )
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Your own id for the article: ingesting it again replaces the article.",
    )


class ArticleOut(BaseModel):
    id: str
    title: str
    language: str
    topic: str
    tags: list[str]
    source: Literal["bundled", "ingested"]
    content: str | None = None
    indexed: bool = True
    dataset_id: str = Field(BUNDLED, description="`bundled`: the shared knowledge base.")
    external_id: str | None = None
    created: bool = Field(
        True,
        description="False when the dataset already held the same content (that one is "
        "returned, nothing is stored twice).",
    )


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    total: int


def _out(a: Article, with_content: bool = False) -> ArticleOut:
    """A bundled article (those ingested as files before datasets existed are bundled too)."""
    return ArticleOut(
        id=a.id,
        title=a.title,
        language=a.language,
        topic=a.topic,
        tags=list(a.tags),
        source="bundled",
        content=a.content if with_content else None,
        dataset_id=BUNDLED,
        created=False,
    )


def _stored_out(d: StoredDocument, with_content: bool = False, created: bool = True) -> ArticleOut:
    return ArticleOut(
        id=d.id,
        title=d.title,
        language=d.language,
        topic=d.topic,
        tags=list(d.tags),
        source="ingested",
        content=d.content if with_content else None,
        dataset_id=d.dataset_id,
        external_id=d.external_id,
        created=created,
    )


def knowledge_of(engine: Engine) -> PartnerKnowledge:
    if engine.knowledge is None:  # pragma: no cover - Engine.open always sets it
        raise RuntimeError("the engine was opened without its knowledge service")
    return engine.knowledge


@router.post(
    "",
    response_model=ArticleOut,
    status_code=201,
    responses={413: {"model": ErrorBody}, 415: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": ArticleIn.model_json_schema()},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "title": {"type": "string"},
                            "language": {"type": "string", "enum": ["az", "en", "ru"]},
                            "tags": {"type": "string", "description": "comma-separated"},
                            "dataset_id": {"type": "string"},
                            "external_id": {"type": "string"},
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def add_article(
    request: Request,
    partner: AdminPartner,
    deps: DepsDep,
    engine: EngineDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> Any:
    """Add an article (JSON) or a file (multipart: .md, .txt, .pdf); it is searchable at once.
    With an `Idempotency-Key`, a repeat of the same upload returns the first article."""
    raw = await request.body()  # read once: hashed for the key, then parsed (form or JSON)
    return await idempotency.once(
        request,
        engine.runs.store,
        partner.name,
        raw,
        lambda: _add(
            request, partner.name, knowledge_of(engine), engine.settings.upload_parse_seconds
        ),
        201,
    )


def _form_text(form: Any, name: str, max_length: int = 200) -> str | None:
    value = str(form.get(name) or "").strip() or None
    if value is not None and len(value) > max_length:
        raise InvalidRequest(f"{name} is longer than {max_length} characters", code="invalid_field")
    return value


async def form_upload(request: Request, budget: float) -> dict[str, Any]:
    """A multipart upload's file parsed into the fields of `PartnerKnowledge.add` (`upload`
    included). Text extraction (PDF, DOCX above all) is CPU work: in a worker process, killed
    after `budget` seconds (422 `document_too_slow`), or every partner's requests (health checks
    included) would wait for it."""
    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InvalidRequest("multipart body needs a 'file' part", code="missing_file")
    tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
    language = str(form.get("language") or "") or None
    if language not in (None, "az", "en", "ru"):
        raise InvalidRequest("language must be az, en or ru", code="validation_error")
    data = await upload.read()
    doc = await parse_upload_in_worker(
        upload.filename or "",
        data,
        budget=budget,
        title=str(form.get("title") or "") or None,
        language=language,
        tags=tags,
    )
    return {
        "title": doc.title[:200],
        "content": doc.content,
        "language": doc.language,
        "tags": list(doc.tags),
        "topic": doc.topic,
        "dataset_id": _form_text(form, "dataset_id", 64),
        "external_id": _form_text(form, "external_id"),
        "upload": Upload(filename=upload.filename, file_type=doc.file_type, pages=doc.pages),
    }


async def _add(
    request: Request, partner: str, knowledge: PartnerKnowledge, budget: float
) -> ArticleOut:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        fields = await form_upload(request, budget)
    elif content_type.startswith("application/json"):
        try:
            body = ArticleIn.model_validate_json(await request.body())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            code = "malformed_json" if first.get("type") == "json_invalid" else "validation_error"
            raise InvalidRequest(f"{where}: {first.get('msg')}", code=code) from None
        fields = body.model_dump()
    else:
        raise UnsupportedDocument("send application/json or multipart/form-data")
    dataset_id = fields.pop("dataset_id")
    document, created = await knowledge.add(partner, dataset_id, **fields)
    return _stored_out(document, created=created)


@router.get("", response_model=ArticlePage)
async def list_articles(
    partner: AdminPartner,
    deps: DepsDep,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    source: Annotated[Literal["bundled", "ingested"] | None, Query()] = None,
) -> ArticlePage:
    """The bundled base's articles and your own (those of every dataset of yours)."""
    items: list[ArticleOut] = []
    if source in (None, "bundled"):
        items += [_out(a) for a, _ in deps.knowledge().articles()]
    if source in (None, "ingested"):
        items += [_stored_out(d) for d in await knowledge_of(engine).store.documents(partner.name)]
    return ArticlePage(articles=items[offset : offset + limit], total=len(items))


@router.get("/{article_id}", response_model=ArticleOut, responses={404: {"model": ErrorBody}})
async def get_article(
    article_id: ArticleId, partner: AdminPartner, deps: DepsDep, engine: EngineDep
) -> ArticleOut:
    for article, _ in deps.knowledge().articles():
        if article.id == article_id:
            return _out(article, with_content=True)
    try:
        document = await knowledge_of(engine).store.document(partner.name, article_id)
    except NotFound:
        raise NotFound("article not found", code="article_not_found") from None
    return _stored_out(document, with_content=True)


@router.delete(
    "/{article_id}",
    status_code=204,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def delete_article(
    article_id: ArticleId, partner: AdminPartner, deps: DepsDep, engine: EngineDep
) -> Response:
    """Remove one of your articles from its dataset and from retrieval (at once, on every
    replica within the sync interval)."""
    if any(a.id == article_id for a, _ in deps.knowledge().articles()):
        raise Conflict(
            "bundled articles are part of the release and cannot be deleted",
            code="bundled_article",
        )
    try:
        await knowledge_of(engine).delete(partner.name, article_id)
    except NotFound:
        raise NotFound("article not found", code="article_not_found") from None
    return Response(status_code=204)
