"""Pure, typed routers: they only read decisions the nodes wrote into the state.

They are coroutines only because LangGraph runs a plain function in a worker thread: two trips
between threads per turn for a dictionary lookup."""

from __future__ import annotations

from typing import Literal

from graphs.state import State


async def after_route(
    state: State,
) -> Literal["retrieve", "retrieve_weather", "generate", "escalate"]:
    route = state.get("route")
    if route == "human":
        return "escalate"
    if route == "weather":
        return "retrieve_weather"
    if route == "agronomy" and not state.get("needs_question"):
        return "retrieve"
    return "generate"


async def after_assess(state: State) -> Literal["generate", "escalate"]:
    return "escalate" if state.get("escalated") else "generate"


async def after_generate(state: State) -> Literal["escalate", "__end__"]:
    """A hosted model that found no answer in the passages hands the turn over."""
    return "escalate" if state.get("escalated") else "__end__"


async def after_escalate(state: State) -> Literal["await_human", "__end__"]:
    """Pause for a human unless the hand-off message already ended the turn."""
    messages = state.get("messages") or []
    ended = bool(messages) and messages[-1].type == "ai"
    return "__end__" if ended else "await_human"
