"""The `knowledge_search` tool: hybrid search over the agronomy knowledge base."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Literal

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, Field

from alim.knowledge.index import Hit, KnowledgeIndex, SearchOptions


class KnowledgeSearchArgs(BaseModel):
    query: str = Field(min_length=1, description="The farmer's question or keywords")
    search_type: Literal["similarity", "hybrid", "mmr"] = "hybrid"
    k: int = Field(4, ge=1, le=20)
    score_threshold: float | None = Field(None, ge=-1, le=1)
    fetch_k: int = Field(20, ge=1, le=200)
    lambda_mult: float = Field(0.5, ge=0, le=1)


def hit_to_dict(hit: Hit) -> dict[str, Any]:
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
    }


def make_knowledge_tool(get_index: Callable[[], KnowledgeIndex]) -> StructuredTool:
    """Build the tool over an index provider (the index loads on first use)."""

    async def knowledge_search(
        query: str,
        search_type: Literal["similarity", "hybrid", "mmr"] = "hybrid",
        k: int = 4,
        score_threshold: float | None = None,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
    ) -> list[dict[str, Any]]:
        options = SearchOptions(search_type, k, score_threshold, fetch_k, lambda_mult)
        hits = await asyncio.to_thread(lambda: get_index().search(query, options))
        return [hit_to_dict(h) for h in hits]

    return StructuredTool.from_function(
        coroutine=knowledge_search,
        name="knowledge_search",
        description="Search the Azerbaijani agronomy knowledge base (az/en/ru articles).",
        args_schema=KnowledgeSearchArgs,
    )
