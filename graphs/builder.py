"""`build_graph(deps, checkpointer=None)`: assemble and compile the ALİM graph.

START → route ─┬─ agronomy ──→ retrieve ─→ assess ─┬→ generate → END
               ├─ weather ──→ retrieve_weather ─↗   └→ escalate → END
               ├─ smalltalk / off_topic / intent only ─→ generate
               └─ human ──→ escalate
generate → escalate when a hosted model finds no answer in the passages (`NO_ANSWER`);
escalate → await_human (the `interrupt()` an agronomist's reply resumes) with human hand-off.
"""

from __future__ import annotations

from typing import Any

from langgraph.graph import END, START, StateGraph

from graphs.context import Context
from graphs.deps import GraphDeps
from graphs.nodes.assess import assess
from graphs.nodes.escalate import await_human, escalate
from graphs.nodes.generate import make_generate
from graphs.nodes.retrieve import make_retrieve
from graphs.nodes.route import make_route
from graphs.nodes.weather import make_retrieve_weather
from graphs.routing import after_assess, after_escalate, after_generate, after_route
from graphs.state import InputState, State


def build_graph(deps: GraphDeps, checkpointer: Any = None, **compile_kwargs: Any) -> Any:
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("route", make_route(deps))
    builder.add_node("retrieve", make_retrieve(deps))
    builder.add_node("retrieve_weather", make_retrieve_weather(deps))
    builder.add_node("assess", assess)
    builder.add_node("generate", make_generate(deps))
    builder.add_node("escalate", escalate)
    builder.add_node("await_human", await_human)

    builder.add_edge(START, "route")
    builder.add_conditional_edges("route", after_route)
    builder.add_edge("retrieve_weather", "retrieve")
    builder.add_edge("retrieve", "assess")
    builder.add_conditional_edges("assess", after_assess)
    builder.add_conditional_edges("generate", after_generate)
    builder.add_conditional_edges("escalate", after_escalate)
    builder.add_edge("await_human", END)
    return builder.compile(checkpointer=checkpointer, name="alim", **compile_kwargs)
