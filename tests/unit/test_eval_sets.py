"""The labelled question sets under eval/: every row is one `alim eval` can judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from alim.vocab import LANGUAGES, ROUTES

EVAL = Path(__file__).resolve().parents[2] / "eval"
KB = Path(__file__).resolve().parents[2] / "alim" / "data" / "kb"
KINDS = {"fact", "followup", "uncovered", "smalltalk", "off_topic", "weather", "human"}
SETS = sorted(EVAL.glob("*.jsonl"))


def test_the_sets_are_there() -> None:
    assert {p.name for p in SETS} >= {"questions.jsonl", "fresh_probe11.jsonl"}


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_every_row_can_be_judged(path: Path) -> None:
    groups = {p.name.split(".")[0] for p in KB.glob("*.md")}
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    assert len({r["id"] for r in rows}) == len(rows), "ids repeat"
    for row in rows:
        where = f"{path.name}:{row['id']}"
        assert row["kind"] in KINDS and row["lang"] in LANGUAGES, where
        assert row["split"] in ("dev", "test") and row["route"] in ROUTES, where
        assert set(row.get("expected_groups", [])) <= groups, where
        for pattern in row.get("key_fact", []):
            re.compile(pattern)
        if row["kind"] == "followup":
            assert row.get("history"), where
        if row["kind"] in ("fact", "followup"):
            assert not row["escalate"], where  # a broad question may have no key fact
        if row["kind"] == "uncovered":
            assert row["escalate"] and not row["key_fact"], where
