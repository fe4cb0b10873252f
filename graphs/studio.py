"""The graph LangGraph Studio / `langgraph dev` loads (see langgraph.json).

Compiled without a checkpointer (the LangGraph server brings its own). Services load lazily on the
first run, configured from the `ALIM_*` environment like the API and the CLI.
"""

from alim.settings import get_settings
from graphs.builder import build_graph
from graphs.deps import GraphDeps


class _LazySettingsDeps(GraphDeps):
    def __init__(self) -> None:
        super().__init__(settings=None)  # type: ignore[arg-type]

    def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
        if name == "settings" and object.__getattribute__(self, "__dict__").get("settings") is None:
            object.__setattr__(self, "settings", get_settings())
        return object.__getattribute__(self, name)


graph = build_graph(_LazySettingsDeps())
