"""The layer contract also holds for imports import-linter cannot see: import strings such as
uvicorn's "api.app:create_app" and `importlib.import_module(...)` calls.

The layers are read from pyproject.toml's import-linter contract (one definition)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMPORT_STRING = re.compile(r"^([a-z_]+)(?:\.[a-z_]+)*:[A-Za-z_]\w*$")


def layer_rank() -> dict[str, int]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    rank: dict[str, int] = {}
    for i, layer in enumerate(layers):  # highest first
        for package in layer.split("|"):
            rank[package.strip()] = len(layers) - i
    return rank


def string_references(path: Path) -> list[str]:
    """Module names a file refers to by string: import strings and import_module() calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            m = IMPORT_STRING.match(node.value)
            if m:
                found.append(m.group(1))
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value.split(".")[0])
    return found


def test_the_layer_order_is_the_documented_one() -> None:
    rank = layer_rank()
    order = sorted(rank, key=lambda p: -rank[p])
    assert order[-5:] == ["api", "engine", "graphs", "tools", "alim"]
    assert set(order[:2]) == {"bench", "cli"}


def test_string_references_point_down_the_layers() -> None:
    rank = layer_rank()
    broken = []
    for package in rank:
        for path in sorted((ROOT / package).rglob("*.py")):
            for target in string_references(path):
                if target in rank and rank[target] > rank[package]:
                    broken.append(f"{path.relative_to(ROOT)} → {target}")
    assert broken == []


def test_the_checker_sees_an_upward_import_string(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'import importlib\nAPP = "api.app:create_app"\nimportlib.import_module("cli.main")\n'
    )
    assert string_references(module) == ["api", "cli"]
