"""Graph nodes: small async functions `(state, runtime) -> partial state`, built over GraphDeps."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from langgraph.runtime import Runtime

from graphs.context import Context
from graphs.state import State


class Node(Protocol):
    """What a node factory returns (the shape `StateGraph.add_node` accepts)."""

    def __call__(self, state: State, *, runtime: Runtime[Context]) -> Awaitable[dict[str, Any]]: ...
