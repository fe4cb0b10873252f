"""`generate`: the answer, grounded in the passages and the forecast. The only node whose model
tokens reach the user: it writes each piece to the `custom` stream mode (`AnswerPiece`), and in
Studio's `messages` mode they come from the model call itself (other model calls, if any, are
tagged `nostream`)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.messages.ai import add_ai_message_chunks
from langgraph.runtime import Runtime

from alim.llm import ModelChain
from alim.offline import Grounding
from alim.timeutil import now_iso
from alim.vocab import GROUNDED_ROUTES
from graphs.context import Context, context_of
from graphs.deps import GraphDeps
from graphs.evidence import sources_of
from graphs.messages import AnswerPiece, last_user_text, text_of
from graphs.nodes import Node
from graphs.prompts import build_messages, hands_over, is_no_answer
from graphs.state import Evidence, State
from tools.farm_rules import Advice


def evidence_of(state: State) -> list[Evidence]:
    """The articles the answer may quote (none for smalltalk, off-topic and hand-offs)."""
    if (state.get("route") or "agronomy") not in GROUNDED_ROUTES:
        return []
    return list(state.get("evidence") or [])


def grounding_of(state: State, passages: list[Evidence]) -> Grounding:
    language = state.get("language") or "az"
    route = state.get("route") or "agronomy"
    forecast = state.get("forecast")
    place = state.get("place")
    return Grounding(
        question=last_user_text(state["messages"]),
        language=language,
        route=route,
        needs_question=bool(state.get("needs_question")),
        passages=[dict(p) for p in passages],
        place=place["name"] if place else None,
        forecast_days=(forecast or {}).get("days", []),
        advice=[
            Advice(a["rule"], tuple(a["dates"]), a["values"]).text(language)
            for a in state.get("advice") or []
        ],
        weather_unavailable=route == "weather" and forecast is None,
        profile=dict(state.get("profile") or {}) or None,
    )


def make_generate(deps: GraphDeps) -> Node:
    async def generate(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        passages = evidence_of(state)
        g = grounding_of(state, passages)
        ctx = context_of(runtime)
        chain = ModelChain.for_choice(ctx.model, deps.config(), deps.models)
        messages = build_messages(
            g, state["messages"], ctx.instructions, mask=deps.config().pii_masking
        )
        answer: AIMessage | None
        may_hand_over = hands_over(g)
        if ctx.stream_answer:
            chunks: list[AIMessageChunk] = []
            provider = chain.primary
            write = runtime.stream_writer
            # Pieces are held back while the reply may still be the NO_ANSWER marker.
            deciding, held, marked = may_hand_over, "", False
            async for used, chunk in chain.astream(messages, g.model_dump()):
                provider = used
                chunks.append(chunk)
                piece = text_of(chunk)
                if not piece or marked:
                    continue
                if deciding:
                    held += piece
                    verdict = is_no_answer(held)
                    if verdict is None:
                        continue
                    deciding, marked, piece = False, verdict, held
                    if marked:
                        continue
                write(AnswerPiece(piece))
            if deciding and held:  # the reply ended as a prefix of the marker ("NO")
                write(AnswerPiece(held))
            # One merge at the end (adding chunk by chunk copies the growing text each time).
            answer = add_ai_message_chunks(chunks[0], *chunks[1:]) if chunks else None
        else:
            provider, answer = await chain.ainvoke(messages, g.model_dump())
        text = str(answer.content) if answer is not None else ""
        usage = (
            dict(answer.usage_metadata) if answer is not None and answer.usage_metadata else None
        )
        if may_hand_over and is_no_answer(text):
            # The model found no answer in the passages: an agronomist gives it (`escalate`).
            return {
                "escalated": True,
                "escalation_reason": "low_confidence",
                "model": provider.model_name,
                "usage": usage,
            }
        sources = sources_of(passages)
        message = AIMessage(
            content=text,
            id=answer.id if answer is not None else None,  # same id: not re-emitted as a whole
            response_metadata={
                "model_name": provider.model_name,
                "created_at": now_iso(),
                "sources": sources,
            },
        )
        return {
            "messages": [message],
            "sources": sources,
            "model": provider.model_name,
            "usage": usage,
        }

    return generate
