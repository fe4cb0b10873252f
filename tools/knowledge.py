"""The `knowledge_search` tool: hybrid search over the agronomy knowledge base."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import NotRequired, TypedDict

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from alim.knowledge.index import Hit, KnowledgeIndex, SearchOptions
from alim.vocab import (
    DEFAULT_FETCH_K,
    DEFAULT_K,
    DEFAULT_LAMBDA_MULT,
    DEFAULT_SEARCH_TYPE,
    SearchType,
)


class Chunk(TypedDict):
    """A retrieved knowledge passage ."""

    id: str
    article_id: str
    group: str
    title: str
    language: str
    text: str
    tags: str
    score: float
    """Cosine similarity of the passage to the question."""
    relevance: float
    """The ranking score the passage was retrieved by."""
    keyword_score: float
    named: NotRequired[bool]
    """It holds the rare names (a variety, a product) the question holds."""
    n: NotRequired[int]
    """Citation number, once chosen as evidence."""


class KnowledgeSearchArgs(BaseModel):
    query: str = Field(min_length=1, description="The farmer's question or keywords")
    search_type: SearchType = DEFAULT_SEARCH_TYPE
    k: int = Field(DEFAULT_K, ge=1, le=20)
    score_threshold: float | None = Field(None, ge=-1, le=1)
    fetch_k: int = Field(DEFAULT_FETCH_K, ge=1, le=200)
    lambda_mult: float = Field(DEFAULT_LAMBDA_MULT, ge=0, le=1)


def hit_to_dict(hit: Hit) -> Chunk:
    c = hit.chunk
    return {
        "id": c.id,
        "article_id": c.article_id,
        "group": c.group,
        "title": c.title,
        "language": c.language,
        "text": c.text,
        "tags": c.tags,
        "score": hit.score,
        "relevance": hit.relevance,
        "keyword_score": hit.keyword_score,
        "named": hit.named,
    }


def make_knowledge_tool(get_index: Callable[[], KnowledgeIndex]) -> StructuredTool:
    """Build the tool over an index provider (the index loads on first use)."""

    async def knowledge_search(
        query: str,
        search_type: SearchType = DEFAULT_SEARCH_TYPE,
        k: int = DEFAULT_K,
        score_threshold: float | None = None,
        fetch_k: int = DEFAULT_FETCH_K,
        lambda_mult: float = DEFAULT_LAMBDA_MULT,
    ) -> list[Chunk]:
        options = SearchOptions(search_type, k, score_threshold, fetch_k, lambda_mult)
        hits = await asyncio.to_thread(lambda: get_index().search(query, options))
        return [hit_to_dict(h) for h in hits]

    return StructuredTool.from_function(
        coroutine=knowledge_search,
        name="knowledge_search",
        description="Search the Azerbaijani agronomy knowledge base (az/en/ru articles).",
        args_schema=KnowledgeSearchArgs,
    )
