"""Draw a LangGraph graph as PNG offline (matplotlib), in layers from START to END.

LangGraph's own `draw_mermaid_png` calls a web service; this works without a network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _layers(graph: Any) -> dict[str, int]:
    depth = {node: 0 for node in graph.nodes}
    for _ in range(len(depth)):  # longest-path layering (the graph is a DAG)
        for edge in graph.edges:
            depth[edge.target] = max(depth[edge.target], depth[edge.source] + 1)
    return depth


def draw_graph_png(graph: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depth = _layers(graph)
    rows: dict[int, list[str]] = {}
    for node in sorted(depth, key=lambda n: (depth[n], n)):
        rows.setdefault(depth[node], []).append(node)
    pos = {
        node: ((i + 1) / (len(nodes) + 1), 1 - d / max(len(rows) - 1, 1))
        for d, nodes in rows.items()
        for i, node in enumerate(nodes)
    }
    fig, ax = plt.subplots(figsize=(7, 1.3 * len(rows) + 1))
    for edge in graph.edges:
        (x1, y1), (x2, y2) = pos[edge.source], pos[edge.target]
        ax.annotate(
            "",
            xy=(x2, y2 + 0.03),
            xytext=(x1, y1 - 0.03),
            arrowprops={
                "arrowstyle": "->",
                "linestyle": ":" if edge.conditional else "-",
                "color": "#555",
            },
        )
    for node, (x, y) in pos.items():
        label = node.strip("_")
        ax.text(
            x,
            y,
            label,
            ha="center",
            va="center",
            fontsize=10,
            bbox={
                "boxstyle": "round,pad=0.4",
                "fc": "#e8f4ea" if "_" not in node[:2] else "#ddd",
                "ec": "#2d6a4f",
            },
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.1, 1.1)
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
