"""The optional LLM router: a hosted chat model classifies the turn with structured output.

Used when the run's context asks for it (`Context.router = "llm"`) and the chosen model is a hosted
one. The deterministic rules still come first (a request for a person, an announced question,
unmistakable off-topic words); any model failure or unusable answer falls back to the semantic
router, so routing never fails a turn. The call is tagged `nostream`: its tokens never reach the
user's stream.
"""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from pydantic import BaseModel, Field

from alim.routing import RouteDecision
from alim.vocab import Route

log = logging.getLogger(__name__)

PROMPT = """You route messages sent to ALİM, an agronomy assistant for farmers in Azerbaijan.
Messages may be in Azerbaijani, English or Russian. Answer with JSON {"route": …, "reason": …}:
- agronomy: any farming question (crops, soil, irrigation, fertiliser, pests, diseases, sowing,
  harvest, storage), also a greeting followed by a farming question;
- weather: the weather or forecast for a place or the coming days, or whether to irrigate or
  spray given the coming weather;
- smalltalk: greetings, thanks, who are you, what can you do — with no farming question;
- off_topic: anything that is not farming or weather;
- human: the user asks to talk to a person (an agronomist, an operator)."""


class RouteChoice(BaseModel):
    route: Route
    reason: str = Field("", max_length=300)


async def classify_with_llm(model: BaseChatModel, text: str) -> RouteDecision | None:
    """The model's route, or None when it failed or answered something unusable."""
    structured = model.with_structured_output(RouteChoice, method="json_mode").with_config(
        tags=["nostream"], run_name="llm_router"
    )
    try:
        choice = await structured.ainvoke([SystemMessage(PROMPT), HumanMessage(text)])
    except Exception as exc:  # any provider or parsing failure: the semantic router decides
        log.warning("LLM router failed (%s); using the semantic router", type(exc).__name__)
        return None
    if not isinstance(choice, RouteChoice):
        return None
    return RouteDecision(choice.route, 1.0, "llm")
