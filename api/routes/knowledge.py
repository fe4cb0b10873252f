"""Knowledge ingest and browsing (`admin` scope): JSON articles or .md/.txt/.pdf uploads."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alim.errors import InvalidRequest
from alim.knowledge.documents import Article
from alim.knowledge.uploads import parse_upload
from api import idempotency
from api.deps import AdminPartner, DepsDep, EngineDep
from api.schemas import ErrorBody

router = APIRouter(prefix="/knowledge", tags=["knowledge"])
ArticleId = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,120}$")]


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200, examples=["Badımcanın damcı suvarılması"])
    content: str = Field(min_length=1, max_length=200_000, description="Markdown or plain text.")
    language: Literal["az", "en", "ru"] = Field(examples=["az"])
    tags: list[str] = Field(default_factory=list, max_length=30)
    topic: str = Field("", max_length=40, examples=["irrigation"])


class ArticleOut(BaseModel):
    id: str
    title: str
    language: str
    topic: str
    tags: list[str]
    source: Literal["bundled", "ingested"]
    content: str | None = None
    indexed: bool = True


class ArticlePage(BaseModel):
    articles: list[ArticleOut]
    total: int


def _out(a: Article, source: str, with_content: bool = False) -> ArticleOut:
    return ArticleOut(
        id=a.id,
        title=a.title,
        language=a.language,
        topic=a.topic,
        tags=list(a.tags),
        source=source,  # type: ignore[arg-type]
        content=a.content if with_content else None,
    )


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
        request, engine.runs.store, partner.name, raw, lambda: _add(request, deps), 201
    )


async def _add(request: Request, deps: DepsDep) -> ArticleOut:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("multipart body needs a 'file' part", code="missing_file")
        tags = [t.strip() for t in str(form.get("tags") or "").split(",") if t.strip()]
        language = str(form.get("language") or "") or None
        if language not in (None, "az", "en", "ru"):
            raise InvalidRequest("language must be az, en or ru", code="validation_error")
        data = await upload.read()
        # Text extraction (PDF above all) is CPU work: off the event loop, or every partner's
        # requests (health checks included) wait for it.
        doc = await asyncio.to_thread(
            parse_upload,
            upload.filename or "",
            data,
            title=str(form.get("title") or "") or None,
            language=language,
            tags=tags,
        )
        fields: dict[str, Any] = {
            "title": doc.title[:200],
            "content": doc.content,
            "language": doc.language,
            "tags": list(doc.tags),
            "topic": doc.topic,
        }
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
        from alim.knowledge.uploads import UnsupportedDocument

        raise UnsupportedDocument("send application/json or multipart/form-data")
    service = deps.knowledge()
    article = await asyncio.to_thread(lambda: service.ingest(**fields))
    return _out(article, "ingested")


@router.get("", response_model=ArticlePage)
async def list_articles(
    partner: AdminPartner,
    deps: DepsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    source: Annotated[Literal["bundled", "ingested"] | None, Query()] = None,
) -> ArticlePage:
    items = [(a, s) for a, s in deps.knowledge().articles() if source in (None, s)]
    return ArticlePage(
        articles=[_out(a, s) for a, s in items[offset : offset + limit]], total=len(items)
    )


@router.get("/{article_id}", response_model=ArticleOut, responses={404: {"model": ErrorBody}})
async def get_article(article_id: ArticleId, partner: AdminPartner, deps: DepsDep) -> ArticleOut:
    article, source = deps.knowledge().get(article_id)
    return _out(article, source, with_content=True)


@router.delete(
    "/{article_id}",
    status_code=204,
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def delete_article(article_id: ArticleId, partner: AdminPartner, deps: DepsDep) -> Response:
    """Remove an ingested article from the knowledge base and the index."""
    await asyncio.to_thread(deps.knowledge().delete, article_id)
    return Response(status_code=204)
