"""Which articles an answer quotes, and which leads (graphs.evidence)."""

from __future__ import annotations

from typing import Any, ClassVar

from alim.knowledge.documents import load_articles
from alim.knowledge.index import KnowledgeIndex, RankedSentence, SearchOptions
from alim.understanding import Understanding, labelled_for_others, understand
from graphs.evidence import (
    ENTITY_POOL,
    LEAD_MARGIN,
    MAX_ARTICLES,
    choose_articles,
    evidence_for,
    gather,
)
from tests.conftest import FIXTURE_KB
from tests.support.fakes import HashingEmbeddings

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


def test_the_one_crop_named_is_read_whatever_retrieval_made_of_its_article() -> None:
    # "qışlıq qovunları necə saxlayım?": the word for winter brings up the frost article.
    chunks = [chunk("frost.en", "frost", 0.06), chunk("diseases.en", "diseases", 0.05)]
    chosen = choose_articles(chunks, "az", VERSIONS, own=("wheat",))  # type: ignore[arg-type]
    assert [(a, s) for a, _, s in chosen] == [
        ("frost.en", 0.86),
        ("wheat.az", None),
        ("diseases.en", 0.85),
    ]
    # Retrieved but far less relevant than the first: read all the same.
    chunks = [chunk("frost.en", "frost", 0.06), chunk("wheat.az", "wheat", 0.01)]
    chosen = choose_articles(chunks, "az", VERSIONS, own=("wheat",))  # type: ignore[arg-type]
    assert [(a, s) for a, _, s in chosen] == [("frost.en", 0.86), ("wheat.az", 0.81)]
    # Several crops named compare them: only what retrieval found is read.
    chunks = [chunk("frost.en", "frost", 0.06)]
    both = choose_articles(chunks, "az", VERSIONS, own=("wheat", "diseases"))  # type: ignore[arg-type]
    assert [a for a, _, _ in both] == ["frost.en"]


class _Index:
    """What `gather` reads of an index: topics' versions, titles and ranked sentences."""

    group_articles: ClassVar = {
        "wheat": {"en": "wheat.en"},
        "fertiliser": {"en": "npk.en"},
    }

    def __init__(self, best: dict[str, list[tuple[Any, ...]]]) -> None:
        self.best = best

    def rank_sentences(self, question: str, article_id: str, cues: Any = ()) -> list[Any]:
        return [RankedSentence(*row) for row in self.best[article_id]]

    def article_title(self, article_id: str) -> str:
        return article_id

    def article_language(self, article_id: str) -> str:
        return "en"


def test_the_article_whose_best_sentence_answers_clearly_better_leads() -> None:
    chunks = [chunk("wheat.en", "wheat", 0.06), chunk("npk.en", "fertiliser", 0.05)]
    question = "My wheat's lower leaves are pale yellow: what is missing?"
    nitrogen = [("Pale yellow lower leaves mean nitrogen is short.", 0.86)]
    rust = [("Yellow rust shows as stripes of yellow pustules.", 0.80)]
    evidence = gather(_Index({"wheat.en": rust, "npk.en": nitrogen}), question, chunks, "en")  # type: ignore[arg-type]
    assert [(e["n"], e["article_id"]) for e in evidence] == [(1, "npk.en"), (2, "wheat.en")]
    # Within LEAD_MARGIN, retrieval's order stands.
    close = [("Yellow rust shows as stripes of yellow pustules.", 0.86 - LEAD_MARGIN / 2)]
    evidence = gather(_Index({"wheat.en": close, "npk.en": nitrogen}), question, chunks, "en")  # type: ignore[arg-type]
    assert [e["article_id"] for e in evidence] == ["wheat.en", "npk.en"]


def test_a_diagnosis_names_what_the_farmer_sees() -> None:
    chunks = [chunk("wheat.en", "wheat", 0.06)]
    symptoms = "Pale, then brown sunken spots appear on the sunny side."
    index = _Index({"wheat.en": [(symptoms, 0.9, "Sunscald of fruit"), ("Keep leaves.", 0.8, "")]})
    (evidence,) = gather(index, "What are these spots?", chunks, "en", name_sections=True)  # type: ignore[arg-type]
    assert evidence["sentences"] == [f"**Sunscald of fruit:** {symptoms}", "Keep leaves."]
    # A sentence that already holds the heading's words, or another kind of question: as written.
    (plain,) = gather(index, "What are these spots?", chunks, "en")  # type: ignore[arg-type]
    assert plain["sentences"][0] == symptoms
    named = "Sunscald of fruit shows as brown sunken spots."
    index = _Index({"wheat.en": [(named, 0.9, "Sunscald of fruit")]})
    (evidence,) = gather(index, "What are these spots?", chunks, "en", name_sections=True)  # type: ignore[arg-type]
    assert evidence["sentences"] == [named]


def test_articles_of_crops_the_question_does_not_name_are_not_cited() -> None:
    chunks = [
        {"group": "wheat", "article_id": "wheat.en", "relevance": 0.9, "score": 0.9},
        {"group": "onion-garlic", "article_id": "onion-garlic.en", "relevance": 0.8, "score": 0.8},
    ]
    versions = {"wheat": {"en": "wheat.en"}, "onion-garlic": {"en": "onion-garlic.en"}}
    chosen = choose_articles(chunks, "en", versions, foreign={"wheat"})  # type: ignore[arg-type]
    assert [a for a, _, _ in chosen] == ["onion-garlic.en"]


def test_an_article_retrieval_missed_leads_when_its_sentence_answers_clearly_better() -> None:
    # "How many years before tomatoes again after potatoes?": the two crops' articles come up,
    # the rotation sentence is in the diseases article.
    chunks = [chunk("wheat.en", "wheat", 0.06), chunk("npk.en", "fertiliser", 0.05)]
    question = "How many years before I grow tomatoes again after potatoes?"
    best = {
        "wheat.en": [("Plant tomatoes after the last frost.", 0.86)],
        "npk.en": [("Potatoes need potassium.", 0.84)],
        "diseases.en": [("Do not grow the potato family in one field for 3–4 years.", 0.93)],
    }
    evidence = gather(
        _Index(best), question, chunks, "en", challenger=("diseases.en", "rotation", 0.93)
    )  # type: ignore[arg-type]
    assert [(e["article_id"], e["group"]) for e in evidence][:2] == [
        ("diseases.en", "rotation"),
        ("wheat.en", "wheat"),
    ]
    assert len(evidence) <= MAX_ARTICLES
    # Within LEAD_MARGIN of what retrieval found, it is not quoted at all.
    close = 0.86 + LEAD_MARGIN / 2
    best["diseases.en"] = [("Do not grow the potato family in one field.", close)]
    evidence = gather(
        _Index(best), question, chunks, "en", challenger=("diseases.en", "rotation", close)
    )  # type: ignore[arg-type]
    assert [e["article_id"] for e in evidence] == ["wheat.en", "npk.en"]


def test_sentences_labelled_for_other_crops_come_after_the_rest() -> None:
    chunks = [chunk("seedlings.en", "seedlings", 0.06)]
    best = {
        "seedlings.en": [
            ("**Cucumber, melon:** in pots, 25–30 days before transplanting.", 0.9),
            ("Harden seedlings for 7–10 days before transplanting.", 0.8),
        ]
    }
    rice = understand("how old should rice seedlings be when I transplant them?")

    def others(text: str) -> bool:
        return labelled_for_others(text, rice)

    (evidence,) = gather(_Index(best), "rice seedlings", chunks, "en", others=others)  # type: ignore[arg-type]
    assert evidence["sentences"][0].startswith("Harden seedlings")
    assert evidence["sentences"][1].startswith("**Cucumber, melon:**")  # kept, behind


class RecordingIndex(KnowledgeIndex):
    """The fixture index, keeping the options of every search."""

    searched: list[SearchOptions]

    def search(self, query: str, options: SearchOptions | None = None) -> list[Any]:
        self.searched = [*getattr(self, "searched", []), options or SearchOptions()]
        return super().search(query, options)


def test_a_crop_the_search_missed_is_searched_on_its_own() -> None:
    index = RecordingIndex.build(load_articles(FIXTURE_KB), HashingEmbeddings())
    assert isinstance(index, RecordingIndex)
    question = "frost protection for orchards"
    # Among the ENTITY_POOL candidates of a one-chunk search there is no wheat passage...
    wide = index.search(question, SearchOptions(k=ENTITY_POOL))
    assert "wheat" not in {h.chunk.group for h in wide}
    index.searched = []
    evidence_for(index, question, None, "en", SearchOptions(k=1))
    assert [o.groups for o in index.searched] == [()]
    # ...so a question about wheat searches the wheat article on its own for its best chunk.
    index.searched = []
    wheat = Understanding(crops=("wheat",), groups=("wheat",))
    evidence_for(index, question, wheat, "en", SearchOptions(k=1))
    assert ("wheat",) in [o.groups for o in index.searched]


def test_the_chunks_hold_the_article_the_answer_leads_with() -> None:
    index = KnowledgeIndex.build(load_articles(FIXTURE_KB), HashingEmbeddings())
    question = "when to sow, how deep"
    assert index.search(question, SearchOptions(k=1))[0].chunk.group == "drought"
    wheat = Understanding(crops=("wheat",), groups=("wheat",))
    chunks, evidence = evidence_for(index, question, wheat, "en", SearchOptions(k=1))
    # The frost article leads the answer: its best chunk is what the confidence weighs.
    assert evidence[0]["group"] == "frost"
    assert [c["id"] for c in chunks] == ["frost.en#0"]
