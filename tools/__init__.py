"""LangChain tools used by the graph: the weather forecast and the knowledge search."""
