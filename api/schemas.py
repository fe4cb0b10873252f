"""Request and response bodies (their descriptions and examples are the partner docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alim.runs import RunStatus
from alim.vocab import (
    DEFAULT_FETCH_K,
    DEFAULT_K,
    DEFAULT_LAMBDA_MULT,
    DEFAULT_SEARCH_TYPE,
    SearchType,
)

THREAD_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
USER_ID_PATTERN = r"^[^\x00-\x1f]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FarmProfileIn(Strict):
    region: str | None = Field(
        None, max_length=100, description="District or city.", examples=["Quba"]
    )
    crops: list[str] | None = Field(None, max_length=20, examples=[["alma", "kartof"]])
    soil: str | None = Field(None, max_length=200, examples=["gillicəli, pH 7.8"])
    irrigation: str | None = Field(None, max_length=200, examples=["damcı"])


class SearchOptionsIn(Strict):
    search_type: SearchType = Field(
        DEFAULT_SEARCH_TYPE,
        description="Dense only, dense + BM25 fused, or maximal marginal relevance.",
    )
    k: int = Field(DEFAULT_K, ge=1, le=20, description="Chunks to retrieve.")
    score_threshold: float | None = Field(
        None, ge=-1, le=1, description="Drop chunks below this cosine similarity."
    )
    fetch_k: int = Field(
        DEFAULT_FETCH_K, ge=1, le=200, description="Candidates before fusion / MMR."
    )
    lambda_mult: float = Field(
        DEFAULT_LAMBDA_MULT, ge=0, le=1, description="MMR: 1 relevance … 0 diversity."
    )


class ChatRequest(Strict):
    message: str = Field(
        min_length=1,
        description="The farmer's message (max 4,000 characters by default).",
        examples=["Fermada susuzluq var, nə edim?"],
    )
    user_id: str = Field(
        pattern=USER_ID_PATTERN,
        description="Your end user's id; threads belong to it.",
        examples=["partner_app_user_123"],
    )
    thread_id: str | None = Field(
        None,
        pattern=THREAD_ID_PATTERN,
        description="Continue this thread, or name a new one (1–128 of A-Z a-z 0-9 . _ : -). "
        "Omit it to start a new thread; its id comes back in the response.",
        examples=["optional-uuid"],
    )
    language: Literal["auto", "az", "en", "ru"] = Field(
        "auto", description="Answer language; auto follows the question."
    )
    profile: FarmProfileIn | None = Field(
        None, description="Farm profile; kept in the thread and used as the weather default."
    )
    search_options: SearchOptionsIn | None = None
    dataset_id: str | list[str] | None = Field(
        None,
        description="Search only this dataset of yours, or these (at most 20; `[]`: none of "
        "yours); omitted: your assistant's `dataset_ids` (`PUT /assistant`), else all of your "
        "datasets. `bundled` names the shared base. Another partner's dataset id gives 404 "
        "`dataset_not_found`.",
        examples=["ds-3f2a9c1e5b7d4a60"],
    )
    include_bundled: bool | None = Field(
        None,
        description="Search the shared bundled knowledge base too; omitted: your assistant's "
        "`include_bundled` (true unless set).",
    )
    metadata: dict[str, str] | None = Field(
        None, max_length=20, description="Your own tags for this run (stored with its trace)."
    )
    multitask_strategy: Literal["reject", "enqueue"] = Field(
        "reject",
        description="When the thread is busy with another run: refuse this one (`reject`: 409 "
        "`thread_busy`) or let it wait and run next, in arrival order (`enqueue`: its stream "
        "opens at once with a `queued` event).",
    )
    on_disconnect: Literal["continue", "cancel"] = Field(
        "continue",
        description="Streams: when the connection drops, the run goes on (`continue`; resume "
        "it with `GET /runs/{run_id}/stream`) or stops (`cancel`).",
    )


class Source(BaseModel):
    id: str = Field(description="Knowledge article id.", examples=["irrigation-drought.az"])
    title: str = Field(examples=["Quraqlıq və su çatışmazlığı ilə mübarizə"])
    score: float = Field(description="Cosine similarity of the best chunk.", examples=[0.83])
    document_id: str | None = Field(
        None, description="The cited article or document (the same as `id`)."
    )
    dataset_id: str | None = Field(
        None, description="Its dataset: `bundled` (the shared base) or one of yours."
    )
    chunk_index: int | None = Field(
        None,
        description="The chunk the cited passage leads with (`GET /documents/{id}/chunks/{n}`).",
    )
    page_number: int | None = Field(None, description="That chunk's page, for PDFs (from 1).")


class InvokeResponse(BaseModel):
    response: str = Field(description="The answer.", examples=["Suvarmalı..."])
    thread_id: str = Field(examples=["uuid-of-thread"])
    model: str = Field(description="The model that answered.", examples=["llama-3.3-70b-versatile"])
    run_id: str
    route: str | None = Field(None, examples=["agronomy"])
    confidence: float | None = Field(None, ge=0, le=1)
    escalated: bool = False
    escalation_reason: Literal["low_confidence", "user_requested"] | None = None
    sources: list[Source] = Field(default_factory=list)
    usage: dict[str, Any] | None = Field(None, description="Token usage, when reported.")
    escalation_id: str | None = Field(
        None, description="When escalated: the escalation an agronomist will answer."
    )


class RunError(BaseModel):
    code: str = Field(examples=["run_lost"])
    detail: str


class RunOut(BaseModel):
    run_id: str
    thread_id: str
    status: RunStatus = Field(
        description="`interrupted`: the run handed the question to an agronomist."
    )
    created_at: str
    updated_at: str
    finished_at: str | None = None
    result: InvokeResponse | None = Field(
        None, description="Once ended with an answer: the same body as `/graph/invoke`."
    )
    error: RunError | None = None


class ThreadSummary(BaseModel):
    thread_id: str
    title: str = Field(description="The thread's first message (truncated).")
    created_at: str
    updated_at: str
    message_count: int
    status: str = "active"


class ThreadList(BaseModel):
    threads: list[ThreadSummary]


class MessageOut(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    created_at: str | None = None
    sources: list[Source] | None = None
    from_human: bool = Field(False, description="Written by a human agronomist.")
    aborted: str | None = Field(
        None,
        description="Set when the turn ended without an answer (the content is then empty): "
        "`run_lost` (the server stopped), `cancelled`, or the run's error code. Send the "
        "message again for an answer.",
    )


class ThreadDetail(BaseModel):
    thread_id: str
    title: str
    created_at: str
    updated_at: str
    status: str = "active"
    messages: list[MessageOut]


class ErrorBody(BaseModel):
    detail: str = Field(description="What went wrong, for people.")
    code: str = Field(description="Stable machine-readable code.", examples=["thread_busy"])
    request_id: str | None = None


class Health(BaseModel):
    status: str = "ok"


class Ready(BaseModel):
    status: Literal["ready", "degraded"]
    checks: dict[str, str]


COMMON_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON (`malformed_json`)."},
    401: {
        "model": ErrorBody,
        "description": "Missing or unknown X-API-Key (`invalid_api_key`); for a publishable key "
        "also `visitor_identity_required`, `invalid_visitor_token` or `invalid_user_hash`.",
    },
    403: {
        "model": ErrorBody,
        "description": "The key lacks the scope this endpoint needs (`insufficient_scope`), or "
        "a publishable key is used from an origin not on its list (`origin_not_allowed`).",
    },
    404: {"model": ErrorBody, "description": "Not found (or not yours)."},
    413: {"model": ErrorBody, "description": "Request body too large."},
    422: {"model": ErrorBody, "description": "Invalid input; `code` says which rule."},
    429: {"model": ErrorBody, "description": "`rate_limited`; see Retry-After."},
    503: {"model": ErrorBody, "description": "A dependency is unavailable."},
}
"""Error answers every endpoint may give, all with the same body (documented in OpenAPI)."""
