"""Which articles an answer quotes (graphs.evidence.choose_articles)."""

from __future__ import annotations

from typing import Any

from graphs.evidence import MAX_ARTICLES, choose_articles

VERSIONS = {
    "wheat": {"az": "wheat.az", "en": "wheat.en", "ru": "wheat.ru"},
    "sowing-calendar": {"az": "calendar.az", "en": "calendar.en"},
    "diseases": {"en": "diseases.en"},
    "frost": {"en": "frost.en"},
    "partner-note": {"az": "partner-note"},
}


def chunk(article: str, group: str, relevance: float, **extra: Any) -> dict[str, Any]:
    base = {"article_id": article, "group": group, "relevance": relevance}
    return {**base, "score": round(relevance + 0.8, 4), **extra}


def test_each_topic_is_quoted_in_the_question_language_retrieved_or_not() -> None:
    chunks = [chunk("wheat.en", "wheat", 0.06), chunk("diseases.en", "diseases", 0.05)]
    chosen = choose_articles(chunks, "ru", VERSIONS)  # type: ignore[arg-type]
    # wheat.ru was not retrieved, but the topic exists in Russian: that version is quoted.
    assert [(a, g) for a, g, _ in chosen] == [("wheat.ru", "wheat"), ("diseases.en", "diseases")]
    assert chosen[0][2] == 0.86  # the retrieved version's cosine


def test_topics_far_less_relevant_than_the_best_are_left_out_unless_named() -> None:
    chunks = [
        chunk("wheat.az", "wheat", 0.06),
        chunk("frost.en", "frost", 0.02),
        chunk("partner-note", "partner-note", 0.01, named=True),
    ]
    chosen = [a for a, _, _ in choose_articles(chunks, "az", VERSIONS)]  # type: ignore[arg-type]
    assert chosen == ["wheat.az", "partner-note"]


def test_a_topic_the_question_reads_comes_second_even_unretrieved() -> None:
    chunks = [chunk("wheat.az", "wheat", 0.06), chunk("diseases.en", "diseases", 0.055)]
    chosen = choose_articles(
        chunks,  # type: ignore[arg-type]
        "az",
        VERSIONS,
        read_too=("sowing-calendar", "no-such-topic"),
    )
    assert [(a, s) for a, _, s in chosen] == [
        ("wheat.az", 0.86),
        ("calendar.az", None),  # not retrieved: no cosine
        ("diseases.en", 0.855),
    ]
    assert len(chosen) <= MAX_ARTICLES
