"""How far retrieved chunks answer a question (graphs.nodes.assess.confidence_of)."""

from __future__ import annotations

import pytest

from alim.understanding import understand
from graphs.nodes.assess import (
    confidence_of,
    signs_in,
    unanswered_aspect,
    unknown_names,
    unseen_signs,
)
from graphs.state import Chunk


def _chunk(text: str, group: str = "cotton", title: str = "Pambıq", tags: str = "") -> Chunk:
    return {
        "article_id": f"{group}.az",
        "group": group,
        "title": title,
        "tags": tags,
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


NURSERY = _chunk(
    "Spring grafting (whip or cleft) at bud swell, with dormant scions cut in winter.",
    group="seedlings-nursery",
    title="Seedlings and the fruit nursery",
    tags="seedlings, nursery, rootstock, grafting, apple",
)
CITRUS = _chunk("Water mandarins every 7–10 days in July and August.", group="citrus")
FIGS = _chunk("Fig roots easily from 20–30 cm hardwood cuttings.", group="fig-olive")


@pytest.mark.parametrize(
    "question",
    [
        "limon ağacını qələmlə necə çoxaldım?",
        "how do I propagate lemon trees from cuttings?",
        "как размножить лимон черенками?",
    ],
)
def test_propagating_a_crop_whose_passages_say_nothing_of_it_is_unanswered(question: str) -> None:
    # The nursery's scions are apple's, and the citrus passage is about watering.
    assert unanswered_aspect(understand(question), [CITRUS, NURSERY]) == "propagation"


@pytest.mark.parametrize(
    ("question", "chunks"),
    [
        ("əncir qələmlə necə çoxaldım?", [FIGS, NURSERY]),  # the crop's own article has it
        ("how do I graft my apple trees?", [CITRUS, NURSERY]),  # tagged with the crop
        ("как привить яблоню?", [NURSERY]),
        ("how often do I water lemons?", [CITRUS]),  # not a propagation question
        ("тля быстро размножается на перце, чем брызгать?", [CITRUS]),  # pests multiply
        ("how do you graft?", [CITRUS]),  # no crop named: the nursery article's to answer
    ],
)
def test_propagation_answered_by_a_passage_on_the_crop_or_not_asked(
    question: str, chunks: list[Chunk]
) -> None:
    assert unanswered_aspect(understand(question), chunks) is None


POMEGRANATES = _chunk(
    "Cracking happens mostly when dry soil is suddenly soaked during ripening.",
    group="pomegranates",
)


@pytest.mark.parametrize(
    "question",
    [
        "Lənkəranda mandarin meyvələri ağacda yarılır, səbəbi nədir?",
        "my mandarins split open on the tree every autumn, why?",
        "почему мандарины трескаются на дереве?",
    ],
)
def test_fruit_cracking_on_a_crop_whose_passages_say_nothing_of_it_is_unanswered(
    question: str,
) -> None:
    # The citrus passage tells how to water, not why its fruit cracks.
    assert unanswered_aspect(understand(question), [CITRUS, POMEGRANATES]) == "cracking"


@pytest.mark.parametrize(
    "question",
    [
        "narlar ağacda çatlayır, niyə?",
        "why do my pomegranates crack on the tree?",
        "почему гранаты трескаются прямо на дереве?",
        "when do I split the nitrogen on mandarins?",  # splitting a dose is no cracking
    ],
)
def test_fruit_cracking_answered_by_the_crops_passage_or_not_asked(question: str) -> None:
    assert unanswered_aspect(understand(question), [CITRUS, POMEGRANATES]) is None


MAIZE = _chunk(
    "Common smut: large swellings on cobs and stems; remove them before they burst.",
    group="maize",
    title="Growing maize",
)
GRAPES = _chunk(
    "Powdery mildew (oidium): grey-white powder on leaves and berries, berries crack.",
    group="grapes",
    title="Growing grapes",
)
POTATO_BLIGHT = _chunk(
    "Фитофтороз: тёмные водянистые пятна на листьях, снизу белый пушок в сырую погоду.",
    group="potatoes",
    title="Картофель",
)


@pytest.mark.parametrize(
    ("question", "chunks", "unseen"),
    [
        # Spots like cigars, berries gone to mummies: no passage on the crop tells of them.
        (
            "long grey cigar-shaped spots on my maize leaves, what disease is it?",
            [MAIZE],
            ["elongated"],
        ),
        ("на винограде ягоды засыхают в чёрные мумии, что это?", [GRAPES], ["mummy"]),
        # Another crop's passage is no answer about this one (grapes' powder, not maize's).
        (
            "qarğıdalının yarpağında un kimi ağ örtük var, bu nədir?",
            [MAIZE, GRAPES],
            ["mould", "powder"],
        ),
    ],
)
def test_signs_no_passage_on_the_crop_holds_are_unseen(
    question: str, chunks: list[Chunk], unseen: list[str]
) -> None:
    assert unseen_signs(understand(question), question, chunks) == unseen


@pytest.mark.parametrize(
    ("question", "chunks"),
    [
        # The farmer's words and the article's differ, the sign is the same.
        ("üzümün yarpağında un kimi ağ örtük var, nə olub?", [GRAPES]),
        ("на картошке тёмные пятна, снизу пушок, что это?", [POTATO_BLIGHT]),
        # One sign held is enough: smut's swellings, whatever the farmer's soot.
        ("my maize has big swellings full of black soot, what is it?", [MAIZE]),
        # Signs that tell nothing apart (spots, yellowing) are not checked.
        ("yellow spots on maize leaves, what is it?", [MAIZE]),
        # Not a question of what ails the crop.
        ("how long do maize cigar-shaped cobs take to dry?", [MAIZE]),
    ],
)
def test_signs_a_passage_on_the_crop_holds_or_none_asked_are_not_unseen(
    question: str, chunks: list[Chunk]
) -> None:
    assert unseen_signs(understand(question), question, chunks) == []


@pytest.mark.parametrize(
    "text",
    [
        "Horticultural (mineral) oil against scales",  # no leaf miner
        "Сажайте рассаду вечером",  # planting, not soot
        "damcı sistemi kifayət qədər su vermir",  # a system and 'enough', not galls or mould
        "kölgə toru 30–40 %",  # a shade net, not a web
        "siqaret çəkməyin",  # a cigarette, not cigar-shaped spots
    ],
)
def test_words_that_begin_like_a_sign_are_not_that_sign(text: str) -> None:
    assert signs_in(text) == frozenset()
