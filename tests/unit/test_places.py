"""The bundled gazetteer: place names in az / en / ru text, with case endings (alim/places.py)."""

from __future__ import annotations

import pytest

from alim.places import Gazetteer, Place
from graphs.nodes.assess import confidence_of, place_stems
from graphs.state import Chunk


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.bundled()


def _id(place: Place | None) -> str | None:
    return place.id if place else None


def test_the_bundled_gazetteer_has_places_with_coordinates(gazetteer: Gazetteer) -> None:
    assert len(gazetteer.places) >= 60
    for place in gazetteer.places.values():
        assert place.az and place.en and place.ru, place.id
        # Azerbaijan lies within about 38–42° N, 44–51° E.
        assert 38.0 <= place.lat <= 42.0, place.id
        assert 44.0 <= place.lon <= 51.0, place.id


def test_the_weather_question_finds_quba(gazetteer: Gazetteer) -> None:
    place = gazetteer.find("Sabah Qubada yağış olacaq?")
    assert place is not None
    assert place.id == "quba"
    assert place.az == "Quba"
    assert (place.lat, place.lon) == (41.36, 48.51)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Şəkiyə", "seki"),
        ("Sabah Şəkiyə gedirəm", "seki"),
        ("Lənkəranın havası necədir?", "lenkeran"),
        ("Lənkəranın", "lenkeran"),
        ("Will it rain in Sheki", "seki"),
        ("Weather in Lankaran tomorrow", "lenkeran"),
        ("Qubada", "quba"),
        ("Bakıda hava", "baki"),
        ("Bakida hava", "baki"),  # typed without Azerbaijani letters
        ("SEKIDE yagis", "seki"),
        ("Погода в Шеки", "seki"),
        ("Погода в Баку", "baki"),
    ],
)
def test_place_names_with_case_endings_resolve(
    gazetteer: Gazetteer, text: str, expected: str
) -> None:
    assert _id(gazetteer.find(text)) == expected


@pytest.mark.parametrize(
    "text", ["в Губе", "Будет ли завтра дождь в Губе?"], ids=["short", "question"]
)
def test_russian_locative_resolves(gazetteer: Gazetteer, text: str) -> None:
    assert _id(gazetteer.find(text)) == "quba"


@pytest.mark.parametrize(
    "text", ["Когда сажать картофель в Ленкорани?", "из Ленкорани", "Ленкорань"]
)
def test_russian_names_in_soft_sign_take_their_case_endings(
    gazetteer: Gazetteer, text: str
) -> None:
    assert _id(gazetteer.find(text)) == "lenkeran"


@pytest.mark.parametrize(
    "text",
    ["şəkil çək", "Bu şəkildə nə görürsən?", "sekil cek", "Şəkildəki yarpaq saralıb"],
)
def test_a_word_that_merely_starts_like_a_place_is_not_that_place(
    gazetteer: Gazetteer, text: str
) -> None:
    assert _id(gazetteer.find(text)) != "seki"


@pytest.mark.parametrize(
    "text",
    ["şəkil çək", "Pomidorum saralır, nə edim?", "How often should I water tomatoes?", "", "!!"],
)
def test_text_without_a_place_gives_none(gazetteer: Gazetteer, text: str) -> None:
    assert gazetteer.find(text) is None


def test_the_first_place_named_wins(gazetteer: Gazetteer) -> None:
    assert _id(gazetteer.find("Qubadan Şəkiyə yol")) == "quba"
    assert _id(gazetteer.find("Şəkidən Qubaya yol")) == "seki"


def test_get_by_id(gazetteer: Gazetteer) -> None:
    place = gazetteer.get("baki")
    assert place is not None
    assert (place.id, place.az, place.en, place.ru) == ("baki", "Bakı", "Baku", "Баку")


@pytest.mark.parametrize("name", ["Bakı", "Baku", "Баку", "baku"])
def test_get_by_any_name(gazetteer: Gazetteer, name: str) -> None:
    assert _id(gazetteer.get(name)) == "baki"


def test_get_unknown_gives_none(gazetteer: Gazetteer) -> None:
    assert gazetteer.get("atlantis") is None


def test_place_name_in_each_language(gazetteer: Gazetteer) -> None:
    place = gazetteer.get("seki")
    assert place is not None
    assert place.name("az") == "Şəki"
    assert place.name("en") == "Shaki"
    assert place.name("ru") == "Шеки"
    assert place.name("de") == "Shaki"  # other languages fall back to English


def test_a_district_the_question_names_is_no_content_the_knowledge_must_cover() -> None:
    # The knowledge base speaks of zones, not districts: "Saatlıda" counted as a word no
    # passage holds, and a follow-up on sowing depth was handed to an agronomist.
    chunk: Chunk = {
        "article_id": "cotton.az",
        "group": "cotton",
        "title": "Pambıq",
        "text": "Pambığı aprelin ortasından səpin. Səpin dərinliyi 3–5 sm.",
        "relevance": 0.05,
    }
    question = "Pambığı Saatlıda nə vaxt səpim?"
    place = Gazetteer.bundled().find(question)
    assert place is not None
    plain = confidence_of(question, [chunk])
    assert confidence_of(question, [chunk], place_stems(place.id)) > plain
    assert place_stems(None) == frozenset()
