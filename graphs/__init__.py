"""The ALİM agent graph: state, context, nodes, routers, prompts and the builder.

`import graphs` is cheap; `graphs.builder.build_graph(deps)` assembles the graph and
`graphs.studio:graph` is what LangGraph Studio / `langgraph dev` loads.
"""
