"""The graph LangGraph Studio / `langgraph dev` loads (see langgraph.json).

Compiled without a checkpointer (the LangGraph server brings its own). Settings and services load
lazily on the first run, from the same `ALIM_*` environment as the API and the CLI.
"""

from graphs.builder import build_graph
from graphs.deps import GraphDeps

graph = build_graph(GraphDeps())
