"""A follow-up rewritten as a standalone question by the run's hosted model, for retrieval.

"Bəs arpanı?" after "Payızlıq buğdanı nə vaxt səpmək lazımdır?" searches better as "Payızlıq
arpanı nə vaxt səpmək lazımdır?". Without a hosted model the rule-based condensation of
`graphs.nodes.retrieve.search_query` stands; it also stands whenever the model fails or answers
something unusable, so condensing never fails a turn. The call is tagged `nostream`: its tokens
never reach the user's stream.
"""

from __future__ import annotations

import logging

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

log = logging.getLogger(__name__)

PROMPT = """You help a farming assistant search its knowledge base. Given the farmer's previous
question and their follow-up, write the follow-up as one standalone question that says what it
is about (crop, place, stage) and what it asks. Keep the follow-up's language (Azerbaijani,
English or Russian). Reply with the question only."""
MAX_CHARS = 300


async def condense_with_llm(model: BaseChatModel, previous: str, followup: str) -> str | None:
    """The standalone question, or None when the model failed or answered something unusable."""
    messages = [
        SystemMessage(PROMPT),
        HumanMessage(f"Previous question: {previous}\nFollow-up: {followup}"),
    ]
    try:
        reply = await model.with_config(tags=["nostream"], run_name="condense").ainvoke(messages)
    except Exception as exc:  # any provider failure: the rule-based condensation stands
        log.warning("condensing the follow-up failed (%s)", type(exc).__name__)
        return None
    text = " ".join(str(reply.content).split()).strip('"')
    return text if 0 < len(text) <= MAX_CHARS else None
