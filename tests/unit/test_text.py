"""Text normalisation and language detection (alim/text.py)."""

from __future__ import annotations

import pytest

from alim.text import (
    STEM_LENGTH,
    content_stems,
    detect_language,
    fold,
    headed_sentences,
    sentences,
    stems,
    words,
)


def test_fold_maps_azerbaijani_letters_to_ascii_lookalikes() -> None:
    assert fold("Ə ə Ş ş Ç ç Ğ ğ Ö ö Ü ü") == "e e s s c c g g o o u u"


def test_fold_handles_dotted_and_dotless_i() -> None:
    # Azerbaijani İ is a capital i, Azerbaijani I is a capital dotless ı: both fold to "i".
    assert fold("İŞIQ") == "isiq"
    assert fold("Bakı") == "baki"
    assert fold("Quraqlıqda") == "quraqliqda"


def test_fold_keeps_cyrillic_but_lowercases_it() -> None:
    assert fold("Погода в Губе") == "погода в губе"
    assert fold("Ёлка") == "елка"


def test_text_typed_without_azerbaijani_letters_folds_to_the_same_words() -> None:
    assert words("Suvarma cədvəli") == words("suvarma cedveli")
    assert stems("Gübrə vermək") == stems("gubre vermek")


def test_words_splits_on_punctuation_and_underscores() -> None:
    assert words("Salam, dünya! foo_bar 12") == ["salam", "dunya", "foo", "bar", "12"]
    assert words("") == []
    assert words("?! ,") == []


def test_stems_are_word_prefixes_and_drop_single_letters_but_keep_digits() -> None:
    assert stems("Suvarmanın cədvəli a 5") == ["suvarm", "cedvel", "5"]
    assert all(len(s) <= STEM_LENGTH for s in stems("Pambıqçılıq təsərrüfatları"))


def test_inflected_forms_share_a_stem() -> None:
    # Azerbaijani is agglutinative: the case endings must not change the keyword.
    assert stems("suvarmanı") == stems("suvarmada") == stems("suvarma")


def test_content_stems_drop_question_words_and_particles() -> None:
    assert content_stems("Pomidoru nə vaxt suvarmaq lazımdır?") == {"pomido", "suvarm"}
    assert content_stems("How should I water tomatoes?") == {"water", "tomato"}
    assert content_stems("Как поливать томаты?") == {"полива", "томаты"}
    # Wanting is no subject in any language: coverage is what the farmer wants done.
    assert content_stems("yonca əkmək istəyirəm") == content_stems("yonca əkmək")
    assert content_stems("хочу посадить маслину") == content_stems("посадить маслину")


def test_content_stems_leave_out_numbers_and_codes() -> None:
    # A quantity or a tag says how much or which; an unmatched one would lower the coverage
    # of every passage (and so the confidence) of an otherwise well covered question.
    assert content_stems("Fermada susuzluq var, nə edim? [8c0d4e.0.27]") == content_stems(
        "Fermada susuzluq var, nə edim?"
    )
    assert content_stems("5 hektar buğdaya 120 kq azot") == {"hektar", "bugday", "azot"}


def test_content_stems_of_only_function_words_is_empty() -> None:
    assert content_stems("nə necə how what как что") == set()


@pytest.mark.parametrize(
    "text",
    [
        "Pomidoru nə vaxt suvarmaq lazımdır?",
        "Sabah Qubada yağış olacaq?",
        "Buğdaya gübrəni nə zaman verim?",
    ],
)
def test_detects_azerbaijani_with_azerbaijani_letters(text: str) -> None:
    assert detect_language(text) == "az"


@pytest.mark.parametrize(
    "text",
    [
        "suvarma cedveli",
        "pomidor ne vaxt suvarmaq lazimdir",
        "sabah yagis olacaq",
        "salam",
        # No word of the short list: told by its letter sequences.
        "istixanada badimcanin ciceyi tokulur",
        "almalarin icinde qurd cixir",
        "uzum tenekleri qisda donub",
        # A hyphenated suffix is no English word: the "-i" of "pH-i" is not "i".
        "torpagin pH-i nece olmalidi?",
    ],
)
def test_detects_azerbaijani_typed_without_azerbaijani_letters(text: str) -> None:
    assert detect_language(text) == "az"


@pytest.mark.parametrize(
    "text",
    [
        "How often should I water tomatoes?",
        "Will it rain in Quba tomorrow?",
        "What is the best soil for potatoes",
        "hi",
        "Tomatoes cracking after heavy rain",
        "Apricot blossoms browned overnight",
        # A place's name written the Azerbaijani way makes no Azerbaijani question.
        "onion tops are flopping over in my field near Qəbələ. when do i lift them?",
    ],
)
def test_detects_english(text: str) -> None:
    assert detect_language(text) == "en"


@pytest.mark.parametrize(
    "text",
    [
        "Как часто поливать томаты?",
        "Будет ли завтра дождь в Губе?",
        "Когда сеять озимую пшеницу (winter wheat)?",
    ],
)
def test_detects_russian(text: str) -> None:
    assert detect_language(text) == "ru"


def test_text_without_letters_defaults_to_azerbaijani() -> None:
    assert detect_language("") == "az"
    assert detect_language("123 !?") == "az"


@pytest.mark.parametrize("text", ["neche defe?", "?"])
def test_a_follow_up_too_short_to_tell_keeps_the_conversations_language(text: str) -> None:
    assert detect_language(text, previous="az") == "az"
    assert detect_language(text, previous="en") == "en"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("How often should I water them?", "en"),
        ("Как часто?", "ru"),
        ("Bəs istidə?", "az"),
        ("pomidor ne vaxt suvarmaq lazimdir", "az"),
    ],
)
def test_a_follow_up_that_tells_its_language_changes_it(text: str, language: str) -> None:
    for previous in ("az", "en", "ru"):
        assert detect_language(text, previous=previous) == language  # type: ignore[arg-type]


def test_sentences_keep_their_heading_list_label_and_table_columns() -> None:
    text = (
        "## Rates (kg per hectare)\n\n"
        "| Crop | N | K2O |\n|---|---|---|\n| Potato | 100–150 | 100–150 |\n\n"
        "## What each nutrient does\n\n"
        "- **Potassium (K)** – water regulation and fruit quality. Shortage: scorched edges on "
        "older leaves.\n"
        "- short\n"
        "## Water management\n\n"
        "- Tillering: 5–10 cm.\n"
        "- 5 cm\n"
    )
    assert headed_sentences(text) == [
        ("Rates (kg per hectare)", "Potato: N 100–150; K2O 100–150."),
        ("What each nutrient does", "**Potassium (K)** – water regulation and fruit quality."),
        ("What each nutrient does", "Potassium (K): Shortage: scorched edges on older leaves."),
        # Short, but a figure for a stage: a fact of its own. A bare figure is not.
        ("Water management", "Tillering: 5–10 cm."),
    ]
    assert sentences(text) == [s for _, s in headed_sentences(text)]


def test_a_list_item_carries_the_lead_in_that_introduces_its_list() -> None:
    text = (
        "## Crop choice\n\n"
        "Test the soil before you choose. Yield starts to fall at about (ECe, dS/m):\n"
        "- barley ~8, cotton ~7.7 – tolerant;\n"
        "- tomato ~2.5, lucerne ~2 – moderately sensitive.\n\n"
        "Keep the seed bed moist at germination. The crops to sow first are:\n\n"
        "## Sowing\n\n"
        "Sow on the side of the ridge, not on its top.\n"
    )
    lead = "Yield starts to fall at about (ECe, dS/m):"
    assert [s for _, s in headed_sentences(text)] == [
        "Test the soil before you choose.",
        f"{lead} barley ~8, cotton ~7.7 – tolerant;",
        f"{lead} tomato ~2.5, lucerne ~2 – moderately sensitive.",
        "Keep the seed bed moist at germination.",
        "The crops to sow first are:",  # no list followed: it stands alone
        "Sow on the side of the ridge, not on its top.",
    ]


def test_an_abbreviation_does_not_end_a_sentence() -> None:
    # Before, "тыс." ended the sentence and the 22-character fragment holding the figure was
    # dropped: the answer to "how many plants per hectare?" quoted "растений на гектар; ...".
    text = (
        "- Стремитесь к густоте стояния около 80–120 тыс. растений на гектар; норму высева "
        "берите по рекомендации поставщика семян.\n"
        "Çay üçün torpağın pH-ı təxminən 4,5–5,5 olmalıdır. pH 6-dan yuxarı olanda yarpaqlar "
        "saralır.\n"
        "Give compost, e.g. well-rotted manure from the farm. Then water the rows well.\n"
    )
    assert [s for _, s in headed_sentences(text)] == [
        "Стремитесь к густоте стояния около 80–120 тыс. растений на гектар; норму высева "
        "берите по рекомендации поставщика семян.",
        "Çay üçün torpağın pH-ı təxminən 4,5–5,5 olmalıdır.",
        "pH 6-dan yuxarı olanda yarpaqlar saralır.",
        "Give compost, e.g. well-rotted manure from the farm.",
        "Then water the rows well.",
    ]


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (
            "чем побрызгать, чтоб вылечить, если вянут по одному кусту?",
            {"побрыз", "вылечи", "вянут", "кусту"},
        ),
        ("Bəs onları da bir dəfə suvarım?", {"defe", "suvari"}),
        ("Should I spray them if it is very windy at night?", {"spray", "windy", "night"}),
    ],
)
def test_function_words_carry_no_content(text: str, content: set[str]) -> None:
    # How much of a question a passage covers is counted on these: "чтоб" and "одному" would
    # make a colloquial Russian question look less covered than it is.
    assert content_stems(text) == content
