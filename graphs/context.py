"""Per-run knobs, read by nodes through `Runtime[Context]` and editable in LangGraph Studio."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from alim.vocab import (
    DEFAULT_FETCH_K,
    DEFAULT_K,
    DEFAULT_LAMBDA_MULT,
    DEFAULT_SEARCH_TYPE,
    SearchType,
)


@dataclass(frozen=True)
class Context:
    model: str = field(
        default="",
        metadata={
            "description": "Empty = the configured default; else groq | openai | offline, "
            "optionally ':<model name>'."
        },
    )
    search_type: SearchType = field(
        default=DEFAULT_SEARCH_TYPE,
        metadata={
            "description": "similarity: embeddings only; hybrid: embeddings + keywords fused; "
            "mmr: embeddings with diversity."
        },
    )
    k: int = field(
        default=DEFAULT_K,
        metadata={"description": "Number of knowledge chunks to retrieve."},
    )
    score_threshold: float | None = field(
        default=None,
        metadata={"description": "Drop chunks whose cosine similarity is below this."},
    )
    fetch_k: int = field(
        default=DEFAULT_FETCH_K,
        metadata={"description": "Candidates fetched before fusion / MMR."},
    )
    lambda_mult: float = field(
        default=DEFAULT_LAMBDA_MULT,
        metadata={"description": "MMR trade-off: 1 = relevance only, 0 = diversity only."},
    )
    datasets: tuple[str, ...] | None = field(
        default=None,
        metadata={
            "description": "Knowledge datasets searched ('bundled' is the shared base); unset "
            "= the bundled base only. The API sets the partner's own."
        },
    )
    escalation_threshold: float = field(
        default=0.27,
        metadata={"description": "Agronomy turns whose confidence is below this go to a human."},
    )
    language: Literal["auto", "az", "en", "ru"] = field(
        default="auto",
        metadata={"description": "Answer language; auto = the language of the question."},
    )
    router: Literal["semantic", "llm"] = field(
        default="semantic",
        metadata={
            "description": "semantic: rules + exemplar vote (offline); llm: rules, then the "
            "run's hosted model with structured output (falls back to semantic on failure "
            "or with the offline model)."
        },
    )
    instructions: str = field(
        default="",
        metadata={"description": "Extra instructions appended to the system prompt (per partner)."},
    )
    default_region: str | None = field(
        default=None,
        metadata={
            "description": "Weather place when the question and the farm profile name none (per "
            "partner)."
        },
    )
    human_handoff: bool = field(
        default=True,
        metadata={
            "description": "Escalations pause the thread until an agronomist replies (needs a "
            "checkpointer); when off, the hand-off message is the answer and the turn "
            "ends."
        },
    )
    stream_answer: bool = field(
        default=True,
        metadata={
            "description": "Stream the answer from the model token by token; when off (a "
            "caller that reads only the whole answer), it is asked for whole."
        },
    )


def context_of(runtime: object) -> Context:
    """The run's context; defaults when none was given (Studio may send none, or a dict)."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        known = {k: v for k, v in ctx.items() if k in Context.__dataclass_fields__}
        return Context(**known)
    return Context()
