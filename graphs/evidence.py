"""The evidence an answer rests on: which retrieved passages are quoted, and how they are cited.

Shared by `generate` (the answer) and `escalate` (what the agronomist sees)."""

from __future__ import annotations

from collections.abc import Sequence

from graphs.state import Chunk, Source

MAX_ARTICLES = 3
RELATIVE_RELEVANCE = 0.7
"""An article beyond the first is cited only if it is at least this relevant relative to it."""


def select_passages(chunks: Sequence[Chunk], language: str) -> list[Chunk]:
    """Chunks of the best articles (by retrieval order), numbered for citation.

    Topics are ranked as retrieved; for each topic (article group) the version in the question's
    language is used when it was retrieved too, so a better answer in another language is never
    dropped for a worse one in the question's language. Topics far less relevant than the best
    one are left out."""
    best: dict[str, float] = {}  # article -> best relevance
    groups: dict[str, list[str]] = {}  # group -> its retrieved articles, in retrieval order
    language_of: dict[str, str] = {}
    for c in chunks:
        article, group = c["article_id"], c.get("group") or c["article_id"]
        best[article] = max(best.get(article, -1.0), c.get("relevance", 0.0))
        language_of[article] = c.get("language", "")
        if article not in groups.setdefault(group, []):
            groups[group].append(article)
    chosen: list[str] = []
    top: float | None = None
    for articles in groups.values():
        relevance = max(best[a] for a in articles)
        if top is None:
            top = relevance
        elif top <= 0 or relevance < RELATIVE_RELEVANCE * top or len(chosen) == MAX_ARTICLES:
            continue
        native = [a for a in articles if language_of[a] == language]
        chosen.append(native[0] if native else articles[0])
    return [
        Chunk(**c, n=chosen.index(c["article_id"]) + 1) for c in chunks if c["article_id"] in chosen
    ]


def sources_of(passages: Sequence[Chunk]) -> list[Source]:
    best: dict[str, Source] = {}
    for p in passages:
        if p["article_id"] not in best or p["score"] > best[p["article_id"]]["score"]:
            best[p["article_id"]] = {
                "id": p["article_id"],
                "title": p["title"],
                "score": p["score"],
            }
    return list(best.values())
