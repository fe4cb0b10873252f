"""Graph state: a narrow input (what a caller may send) and the richer internal state."""

from __future__ import annotations

from typing import Annotated, Any, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from alim.vocab import EscalationReason, Language, Route
from tools.knowledge import Chunk


class FarmProfile(TypedDict, total=False):
    """What the farmer told us about the farm; kept in the thread across turns."""

    region: str
    """District or city (a gazetteer name); the default place for weather questions."""
    crops: list[str]
    soil: str
    irrigation: str


class Source(TypedDict):
    """A cited source of an answer."""

    id: str
    title: str
    score: float
    document_id: NotRequired[str]
    """The same as `id`: the article or document cited."""
    dataset_id: NotRequired[str]
    """Its dataset (`bundled`: the shared knowledge base)."""
    chunk_index: NotRequired[int]
    """The chunk of the document the cited passage's leading sentence comes from."""
    page_number: NotRequired[int | None]
    """That chunk's page (PDFs), from 1."""


class Evidence(TypedDict):
    """One article an answer may quote: its sentences ranked for the question, best first."""

    n: int
    """Citation number."""
    article_id: str
    group: str
    title: str
    language: str
    score: float
    """Cosine similarity of the article's best retrieved passage to the question."""
    sentences: list[str]
    scores: NotRequired[list[float]]
    """Each sentence's score for the question (`KnowledgeIndex.rank_sentences`): comparable
    across articles, so an answer can merge the best sentences of several."""
    text: str
    """The sentences joined, best first: what a hosted model reads."""
    dataset_id: NotRequired[str]
    chunk_index: NotRequired[int]
    page_number: NotRequired[int | None]
    """Where the leading sentence comes from (its dataset, chunk and page): the citation."""


class Place(TypedDict):
    """Where a weather question is about (a gazetteer entry)."""

    id: str
    name: str
    lat: float
    lon: float
    found_by: str
    """question | profile | default_region"""


class AdviceItem(TypedDict):
    """One rule-based piece of advice from the forecast."""

    rule: str
    dates: list[str]
    values: dict[str, float]


class InputState(TypedDict):
    """What a caller (the API, the CLI, Studio) sends for one turn."""

    messages: Annotated[list[AnyMessage], add_messages]
    """The conversation; a turn appends one user message."""
    user_id: NotRequired[str]
    """The end user, when known (optional in Studio)."""
    profile: NotRequired[FarmProfile | None]
    """Optional farm profile; persists in the thread until replaced."""


class State(InputState):
    """Input plus what the nodes add. Per-turn fields are reset by `route` at every turn."""

    route: NotRequired[Route | None]
    route_method: NotRequired[str]
    """How the route was decided: a rule's name or `semantic`."""
    language: NotRequired[Language]
    """The language of the answer."""
    understanding: NotRequired[dict[str, Any] | None]
    """What this turn's question is about (alim.understanding.Understanding as a dict): crop,
    kind of question, zone, uncovered topic; a follow-up inherits from the previous turn's.
    Kept across turns on purpose (not reset): the next turn reads it."""
    needs_question: NotRequired[bool]
    """The user announced a question without asking it."""
    query: NotRequired[str | None]
    """What retrieval searched with: the question, or a follow-up completed from the
    conversation (by the rules, or a hosted model's standalone question)."""
    chunks: NotRequired[list[Chunk]]
    """Retrieved knowledge chunks, best first."""
    evidence: NotRequired[list[Evidence]]
    """The articles the answer may quote, numbered for citation (graphs.evidence)."""
    place: NotRequired[Place | None]
    """The place of a weather question."""
    forecast: NotRequired[dict[str, Any] | None]
    """Daily forecast (tools.weather.Forecast as a dict), None when unavailable."""
    weather_error: NotRequired[str | None]
    advice: NotRequired[list[AdviceItem]]
    """Rule-based advice from the forecast."""
    confidence: NotRequired[float | None]
    """Confidence in [0, 1] that the knowledge base answers the question."""
    escalated: NotRequired[bool]
    escalation_reason: NotRequired[EscalationReason | None]
    sources: NotRequired[list[Source]]
    """Cited sources of the answer."""
    handoff: NotRequired[str | None]
    """The hand-off message shown to the user while an agronomist takes over."""
    model: NotRequired[str]
    """The model that produced the answer."""
    usage: NotRequired[dict[str, int] | None]


TURN_RESET: dict[str, Any] = {
    "route": None,
    "route_method": None,
    "needs_question": False,
    "query": None,
    "chunks": [],
    "evidence": [],
    "place": None,
    "forecast": None,
    "weather_error": None,
    "advice": [],
    "confidence": None,
    "escalated": False,
    "escalation_reason": None,
    "sources": [],
    "handoff": None,
    "model": None,
    "usage": None,
}
"""Per-turn fields and their empty values: nothing of a turn leaks into the next one."""
