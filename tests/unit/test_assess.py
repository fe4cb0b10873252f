"""How far retrieved chunks answer a question (graphs.nodes.assess.confidence_of)."""

from __future__ import annotations

from graphs.nodes.assess import confidence_of, unknown_names
from graphs.state import Chunk


def _chunk(text: str) -> Chunk:
    return {
        "article_id": "cotton.az",
        "group": "cotton",
        "title": "Pambıq",
        "text": text,
        "relevance": 0.05,
    }


def test_a_word_and_the_articles_form_of_it_count_as_the_same_word() -> None:
    # "cərgələr arası" (between the rows) is "cərgəaraları" in the article: the two agree on
    # five letters, not six, and the question's words were counted as missing.
    question = "pambıq cərgələr arası nə qədər olsun?"
    answering = _chunk("Səpin dərinliyi 3–5 sm; cərgəaraları adətən 60 və ya 90 sm.")
    elsewhere = _chunk("Pambığı aprelin ortasından səpin.")
    assert confidence_of(question, [answering]) > confidence_of(question, [elsewhere])


def test_no_chunk_no_confidence() -> None:
    assert confidence_of("pambıq cərgələr arası?", []) == 0.0


def test_a_variety_the_chunks_do_not_name_is_an_unknown_name() -> None:
    chunk = _chunk("Yeni bağlarda davamlı sortlara üstünlük verin.")
    question = "Almada Qızıl Əhmədi yaxşıdır, yoxsa Gala?"
    assert unknown_names(question, [chunk], frozenset()) == ["Qızıl", "Əhmədi", "Gala"]
    # A name the chunk holds, a place the question names, a capital opening a sentence: none.
    named = _chunk("Yerli sortlar (Mədrəsə, Bayanşirə) yaxşı uyğunlaşıb.")
    assert unknown_names("Şamaxıda Mədrəsə sortu necədir?", [named], frozenset()) == []
    assert unknown_names("Bu il Saatlıda hansı sort?", [chunk], frozenset({"saatli"})) == []
