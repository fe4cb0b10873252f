"""The engine: runs turns of a thread for every entry point (HTTP API, CLI, evaluation).

Layers, one way: `cli` → `api` → `engine` → `graphs` → `tools` → `alim` (core). The entry points
reach the agent only through this package; `Context`, `GraphDeps` and the evidence step
(`gather_evidence`, `hit_to_dict`: the benchmark times it alone) are re-exported for them.
"""

from engine.request import TurnRequest
from engine.runs import LiveRun, RunManager, parse_event_id
from engine.service import Engine
from engine.turn import Turn
from graphs.builder import build_graph
from graphs.context import Context
from graphs.deps import GraphDeps
from graphs.evidence import evidence_of as gather_evidence
from tools.knowledge import hit_to_dict

__all__ = [
    "Context",
    "Engine",
    "GraphDeps",
    "LiveRun",
    "RunManager",
    "Turn",
    "TurnRequest",
    "build_graph",
    "gather_evidence",
    "hit_to_dict",
    "parse_event_id",
]
