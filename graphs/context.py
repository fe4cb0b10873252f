"""Per-run knobs, read by nodes through `Runtime[Context]` and editable in LangGraph Studio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Context:
    model: str = ""
    """"" = the configured default; else groq | openai | offline, optionally ':<model name>'."""
    search_type: Literal["similarity", "hybrid", "mmr"] = "hybrid"
    k: int = 4
    """Number of knowledge chunks to retrieve."""
    score_threshold: float | None = None
    """Drop chunks whose cosine similarity is below this."""
    fetch_k: int = 20
    """Candidates fetched before fusion / MMR."""
    lambda_mult: float = 0.5
    """MMR trade-off: 1 = relevance only, 0 = diversity only."""
    escalation_threshold: float = 0.27
    """Agronomy turns whose confidence is below this go to a human."""
    language: Literal["auto", "az", "en", "ru"] = "auto"
    """Answer language; auto = the language of the question."""
    router: Literal["semantic", "llm"] = "semantic"
    """semantic: rules + exemplar vote (offline); llm: rules, then the run's hosted model with
    structured output (falls back to semantic on failure or with the offline model)."""
    instructions: str = ""
    """Extra instructions appended to the system prompt (per partner)."""
    default_region: str | None = None
    """Weather place when the question and the farm profile name none (per partner)."""
    human_handoff: bool = True
    """Escalations pause the thread until an agronomist replies (needs a checkpointer); when
    off, the hand-off message is the answer and the turn ends."""


def context_of(runtime: object) -> Context:
    """The run's context; defaults when none was given (Studio may send none, or a dict)."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Context):
        return ctx
    if isinstance(ctx, dict):
        known = {k: v for k, v in ctx.items() if k in Context.__dataclass_fields__}
        return Context(**known)
    return Context()
