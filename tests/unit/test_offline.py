"""The offline, retrieval-only answer composer and its chat model (alim/offline.py)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage

from alim.offline import (
    MAX_WORDS,
    OFFLINE_MODEL_NAME,
    Grounding,
    OfflineChatModel,
    compose,
    pieces,
)

OFFLINE_LABEL = {
    "az": "_Oflayn rejim:",
    "en": "_Offline mode:",
    "ru": "_Офлайн-режим:",
}

DROUGHT_EN = {
    "n": 1,
    "title": "Irrigation in drought",
    "text": "When water is short, irrigate orchards and crops at critical stages first. "
    "Irrigate early in the morning or in the evening so that less water evaporates. "
    "Cover the soil with mulch to keep moisture in.",
    "language": "en",
    "article_id": "drought.en",
    "score": 0.5,
}
DROUGHT_AZ = {
    "n": 2,
    "title": "Quraqlıqda suvarma",
    "text": "Su az olanda ilk növbədə bağları və kritik fazada olan bitkiləri suvarın. "
    "Suvarmanı səhər tezdən və ya axşam aparın ki, buxarlanma az olsun. "
    "Torpağın üstünü malçla örtün, nəmliyi qoruyur.",
    "language": "az",
    "article_id": "drought.az",
    "score": 0.4,
}
FROST_EN = {
    "n": 3,
    "title": "Frost protection for orchards",
    "text": "Late spring frost damages open flowers at about minus two degrees. "
    "Irrigate the evening before a frost night and cover young trees with fleece.",
    "language": "en",
    "article_id": "frost.en",
    "score": 0.3,
}
FORECAST_DAYS = [
    {
        "date": "2025-05-10",
        "t_min": 8.0,
        "t_max": 19.46,
        "precipitation_mm": 6.0,
        "wind_max_kmh": 12.0,
    },
    {
        "date": "2025-05-11",
        "t_min": 9.0,
        "t_max": 22.0,
        "precipitation_mm": 0.0,
        "wind_max_kmh": None,
    },
]


# ---------------------------------------------------------------------------- fixed replies


@pytest.mark.parametrize(
    ("language", "start"),
    [("az", "Salam! Mən ALİM-əm"), ("en", "Hello! I am ALİM"), ("ru", "Здравствуйте! Я АЛИМ")],
)
def test_smalltalk_introduces_the_assistant_in_the_users_language(
    language: str, start: str
) -> None:
    text = compose(Grounding(question="Salam", language=language, route="smalltalk"))
    assert text.startswith(start)
    assert OFFLINE_LABEL[language] not in text  # nothing was looked up, nothing to disclaim


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("az", "yalnız kənd təsərrüfatı və hava"),
        ("en", "I can only help with farming and weather"),
        ("ru", "только на вопросы о сельском хозяйстве"),
    ],
)
def test_off_topic_is_declined_in_the_users_language(language: str, phrase: str) -> None:
    grounding = Grounding(
        question="Bitcoin?", language=language, route="off_topic", passages=[DROUGHT_EN]
    )
    text = compose(grounding)
    assert phrase in text
    assert "Irrigation in drought" not in text  # passages are not used for off-topic turns


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("az", "Buyurun, sualınızı yazın."),
        ("en", "Please go ahead and ask."),
        ("ru", "Пожалуйста, задайте вопрос."),
    ],
)
def test_an_announced_question_is_invited(language: str, phrase: str) -> None:
    grounding = Grounding(
        question="Salam, sualım var",
        language=language,
        needs_question=True,
        passages=[DROUGHT_EN],
    )
    text = compose(grounding)
    assert text.startswith(phrase)
    assert "[1]" not in text


def test_an_unknown_language_falls_back_to_english() -> None:
    assert compose(Grounding(question="Hallo", language="de", route="smalltalk")).startswith(
        "Hello! I am ALİM"
    )


# ---------------------------------------------------------------------------- agronomy


@pytest.mark.parametrize("language", ["az", "en", "ru"])
def test_agronomy_cites_numbered_titles_and_carries_the_offline_label(language: str) -> None:
    grounding = Grounding(
        question="Quraqlıqda suvarmanı necə aparım?",
        language=language,
        passages=[DROUGHT_EN, DROUGHT_AZ],
    )
    text = compose(grounding)
    assert text.rstrip().splitlines()[-1].startswith(OFFLINE_LABEL[language])
    for other, label in OFFLINE_LABEL.items():
        if other != language:
            assert label not in text
    cited = [p for p in (DROUGHT_EN, DROUGHT_AZ) if _quoted(text, p)]
    assert cited
    sources = {"az": "Mənbələr: ", "en": "Sources: ", "ru": "Источники: "}[language]
    sources_line = next(line for line in text.splitlines() if line.startswith(sources))
    assert sources_line == sources + "; ".join(f"[{p['n']}] {p['title']}" for p in cited)


def _quoted(text: str, passage: dict[str, object]) -> bool:
    """A run of the answer's sentences quotes the passage and ends with its citation."""
    return any(
        n == str(passage["n"]) and run.split(".")[0].strip() in str(passage["text"])
        for run, n in re.findall(r"([^\[\]\n]+) \[(\d+)\]", text)
    )


def test_agronomy_prefers_passages_in_the_question_language() -> None:
    az = compose(
        Grounding(
            question="Quraqlıqda suvarmanı necə aparım?",
            language="az",
            passages=[DROUGHT_EN, DROUGHT_AZ],
        )
    )
    assert _quoted(az, DROUGHT_AZ)
    assert "Mənbələr: [2] Quraqlıqda suvarma\n" in az
    assert "Irrigation in drought" not in az

    en = compose(
        Grounding(
            question="How do I irrigate in a drought?",
            language="en",
            passages=[DROUGHT_AZ, DROUGHT_EN],
        )
    )
    assert _quoted(en, DROUGHT_EN)
    assert "Quraqlıqda suvarma" not in en
    assert "only in another language" not in en


def test_material_only_in_another_language_is_used_and_said_so() -> None:
    text = compose(
        Grounding(
            question="Как поливать в засуху?", language="ru", passages=[DROUGHT_EN, DROUGHT_AZ]
        )
    )
    assert _quoted(text, DROUGHT_EN) and _quoted(text, DROUGHT_AZ)
    assert "(По этой теме материал пока есть только на другом языке.)" in text
    assert "Источники: [1] Irrigation in drought; [2] Quraqlıqda suvarma" in text


def test_the_answer_quotes_sentences_from_the_passages() -> None:
    text = compose(
        Grounding(
            question="Should I irrigate before a frost night?", language="en", passages=[FROST_EN]
        )
    )
    assert "Irrigate the evening before a frost night and cover young trees with fleece." in text


def test_the_answer_leads_with_the_ranked_sentences_and_stays_short() -> None:
    # Evidence comes ranked (graphs.evidence): the first sentence answers, and leads; the
    # rest follow by their scores, whichever article they come from.
    words = (
        "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi pi rho".split()
    )
    first_sentences = [
        f"{w} {w}s the {w}ing field, so the {w} grows and the {w}er thrives." for w in words[:8]
    ]
    second_sentences = [
        f"{w} {w}ed each {w}, and every {w}ling kept its {w}ness intact." for w in words[8:]
    ]
    first = {
        **DROUGHT_EN,
        "sentences": first_sentences,
        "scores": [0.90, 0.80, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20],
    }
    second = {
        **FROST_EN,
        "n": 2,
        "sentences": second_sentences,
        "scores": [0.85, 0.75, 0.45, 0.35, 0.25, 0.15, 0.10, 0.05],
    }
    text = compose(Grounding(question="irrigate", language="en", passages=[first, second]))
    body = text.split("\n\n")[0]
    assert body.startswith(
        f"{first_sentences[0]} [1] {second_sentences[0]} [2] {first_sentences[1]} [1] "
        f"{second_sentences[1]} [2] {' '.join(first_sentences[2:5])} [1]"
    )  # 9 sentences of 13 words: a tenth would pass the budget
    assert len(body.split()) <= MAX_WORDS + 8  # citation marks
    assert first_sentences[-1] not in text and second_sentences[-1] not in text
    assert "Sources: [1] Irrigation in drought; [2] Frost protection for orchards" in text


def test_the_best_sentence_leads_even_if_another_article_scores_higher() -> None:
    # graphs.evidence already put the article that answers first; its best sentence leads.
    first = {**DROUGHT_EN, "sentences": ["Lead sentence."], "scores": [0.5]}
    second = {**FROST_EN, "n": 2, "sentences": ["Other sentence."], "scores": [0.9]}
    text = compose(Grounding(question="irrigate", language="en", passages=[first, second]))
    assert text.startswith("Lead sentence. [1] Other sentence. [2]")


def test_a_sentence_that_repeats_a_quoted_one_is_left_out() -> None:
    fact = "Sow winter wheat in October on the lowland fields."
    barley = "Sow winter barley in October on the lowland fields."
    first = {**DROUGHT_EN, "sentences": [fact, barley], "scores": [0.9, 0.5]}
    second = {
        **FROST_EN,
        "n": 2,
        "sentences": [f"On lowland fields, {fact.lower()}"],
        "scores": [0.8],
    }
    text = compose(Grounding(question="sow", language="en", passages=[first, second]))
    assert text.count("Sow winter wheat") == 1
    assert barley in text  # another crop: another fact
    assert "Frost protection" not in text  # not quoted, so not cited


def test_the_answer_keeps_to_its_word_budget() -> None:
    letters = "abcdefghijklmnopqrstuvwxyz"
    long = [
        " ".join(f"{letters[i]}{letters[j % 26]}{letters[j // 26]}q" for j in range(50))
        + f" end{i}."
        for i in range(8)
    ]
    text = compose(
        Grounding(
            question="irrigate",
            language="en",
            passages=[
                {**DROUGHT_EN, "sentences": long, "scores": [0.9 - i / 10 for i in range(8)]},
                {**FROST_EN, "sentences": long, "scores": [0.85 - i / 10 for i in range(8)]},
            ],
        )
    )
    # The first sentence (51 words) always comes; a second fits the budget (102 words), a
    # third would not (153).
    body = text.split("\n\n")[0]
    assert body.count("end") == 2 and len(body.split()) <= MAX_WORDS + 2


def test_plain_passages_are_quoted_in_article_order() -> None:
    # Passages without sentence scores (a partner's plain passages) fill in article order.
    text = compose(Grounding(question="irrigate", language="en", passages=[DROUGHT_EN, FROST_EN]))
    assert text.index("critical stages") < text.index("minus two degrees")


def test_at_most_three_articles_are_used() -> None:
    extra = [
        {
            **FROST_EN,
            "n": n,
            "article_id": f"other{n}.en",
            "title": f"Other article {n}",
            "text": f"The {word} article makes a point of its own about pruning.",
        }
        for n, word in ((4, "fourth"), (5, "fifth"))
    ]
    text = compose(
        Grounding(
            question="irrigate",
            language="en",
            passages=[
                {**DROUGHT_EN, "text": "Irrigate the orchards first in a drought."},
                FROST_EN,
                *extra,
            ],
        )
    )
    assert "Sources: [1] Irrigation in drought; [3] Frost protection for orchards; [4]" in text
    assert "Other article 5" not in text and "fifth" not in text


def test_no_passages_says_nothing_was_found() -> None:
    text = compose(Grounding(question="Kivi necə becərilir?", language="az"))
    assert text.startswith("Təəssüf ki, bilik bazamızda bu suala uyğun material tapmadım.")
    assert "Mənbələr" not in text
    assert OFFLINE_LABEL["az"] in text


def test_the_farm_profile_is_mentioned() -> None:
    text = compose(
        Grounding(
            question="irrigate",
            language="en",
            passages=[DROUGHT_EN],
            profile={"region": "Quba", "crops": ["apples", "pears"], "soil": ""},
        )
    )
    assert "For your farm, keep in mind: region: Quba; crops: apples, pears." in text


# ---------------------------------------------------------------------------- weather


def test_weather_lists_the_forecast_days_and_the_advice() -> None:
    text = compose(
        Grounding(
            question="Sabah Qubada yağış olacaq?",
            language="az",
            route="weather",
            place="Quba",
            forecast_days=FORECAST_DAYS,
            advice=["10.05: 6 mm yağış gözlənilir — suvarmanı təxirə salın."],
        )
    )
    assert text.startswith("Quba üçün hava proqnozu:\n")
    assert "• 10.05: 8…19.5 °C, yağış 6 mm, külək 12 km/saata qədər" in text
    assert "• 11.05: 9…22 °C, yağış 0 mm, külək – km/saata qədər" in text
    assert (
        "Məsləhətlər (qaydalara əsasən):\n• 10.05: 6 mm yağış gözlənilir — suvarmanı təxirə salın."
    ) in text
    assert OFFLINE_LABEL["az"] in text
    assert "tapmadım" not in text  # no "nothing found" for a weather answer


def test_weather_without_advice_says_no_particular_risk() -> None:
    text = compose(
        Grounding(
            question="Weather in Quba?",
            language="en",
            route="weather",
            place="Quba",
            forecast_days=FORECAST_DAYS,
        )
    )
    assert "Weather forecast for Quba:" in text
    assert "• 10.05: 8…19.5 °C, rain 6 mm, wind up to 12 km/h" in text
    assert "Advice (from our agronomic rules):\n• No particular weather risk" in text


def test_weather_with_passages_adds_general_guidance_with_sources() -> None:
    text = compose(
        Grounding(
            question="Will there be frost in Quba?",
            language="en",
            route="weather",
            place="Quba",
            forecast_days=FORECAST_DAYS,
            passages=[FROST_EN],
        )
    )
    assert text.index("Weather forecast for Quba:") < text.index("Late spring frost")
    assert "Sources: [3] Frost protection for orchards" in text


@pytest.mark.parametrize(
    ("language", "phrase"),
    [
        ("az", "Hazırda Quba üçün hava proqnozunu əldə etmək mümkün olmadı"),
        ("en", "The weather forecast for Quba is unavailable right now"),
        ("ru", "Прогноз погоды для Quba сейчас недоступен"),
    ],
)
def test_forecast_unavailable_is_said_plainly(language: str, phrase: str) -> None:
    text = compose(
        Grounding(
            question="?",
            language=language,
            route="weather",
            place="Quba",
            weather_unavailable=True,
            forecast_days=FORECAST_DAYS,
        )
    )
    assert text.startswith(phrase)
    assert "2025-05-10" not in text  # no stale numbers next to "unavailable"
    assert OFFLINE_LABEL[language] in text


def test_a_weather_answer_without_forecast_days_is_unavailable_too() -> None:
    text = compose(Grounding(question="?", language="en", route="weather", place="Quba"))
    assert text.startswith("The weather forecast for Quba is unavailable right now")


# ---------------------------------------------------------------------------- streaming


@pytest.mark.parametrize(
    "text",
    [
        "",
        "one",
        "  leading spaces and trailing  ",
        "Line one.\n\n  • indented bullet\n\ttab\n",
        compose(
            Grounding(
                question="Quraqlıqda suvarmanı necə aparım?",
                language="az",
                route="weather",
                place="Quba",
                forecast_days=FORECAST_DAYS,
                passages=[DROUGHT_AZ],
            )
        ),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 5])
def test_pieces_join_back_to_the_exact_text(text: str, size: int) -> None:
    parts = list(pieces(text, size))
    assert "".join(parts) == text
    assert all(parts)  # no empty chunks


def test_pieces_are_small() -> None:
    text = "one two three four five six seven"
    assert list(pieces(text)) == ["one two three four ", "five six seven"]
    assert list(pieces(text, 2)) == ["one two ", "three four ", "five six ", "seven"]


def _grounding() -> Grounding:
    return Grounding(
        question="Quraqlıqda suvarmanı necə aparım?",
        language="az",
        passages=[DROUGHT_EN, DROUGHT_AZ],
    )


async def _stream(model: OfflineChatModel, grounding: Any) -> list[AIMessageChunk]:
    messages = [HumanMessage("Quraqlıqda suvarmanı necə aparım?")]
    return [chunk async for chunk in model.astream(messages, grounding=grounding)]


async def test_astream_yields_several_chunks_that_add_up_to_compose() -> None:
    grounding = _grounding()
    chunks = await _stream(OfflineChatModel(), grounding)
    assert len([c for c in chunks if c.content]) > 10
    assert "".join(str(c.content) for c in chunks) == compose(grounding)


async def test_astream_accepts_the_grounding_as_a_dict() -> None:
    grounding = _grounding()
    chunks = await _stream(OfflineChatModel(), grounding.model_dump())
    assert "".join(str(c.content) for c in chunks) == compose(grounding)


async def test_astream_reports_the_model_name() -> None:
    chunks = await _stream(OfflineChatModel(), _grounding())
    merged = chunks[0]
    for c in chunks[1:]:
        merged = merged + c
    assert merged.response_metadata.get("model_name") == OFFLINE_MODEL_NAME


async def test_astream_waits_the_delay_between_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def recording_sleep(delay: float, *args: Any, **kwargs: Any) -> Any:
        waits.append(delay)
        return await real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    grounding = _grounding()
    chunks = await _stream(OfflineChatModel(delay=0.0005), grounding)
    monkeypatch.undo()

    content_chunks = [c for c in chunks if c.content]
    assert len(content_chunks) == len(list(pieces(compose(grounding))))
    assert waits.count(0.0005) == len(content_chunks)


async def test_ainvoke_gives_the_whole_answer() -> None:
    grounding = _grounding()
    message = await OfflineChatModel().ainvoke(
        [HumanMessage("Quraqlıqda suvarmanı necə aparım?")], grounding=grounding
    )
    assert message.content == compose(grounding)


def test_invoke_without_grounding_answers_the_last_message() -> None:
    message = OfflineChatModel().invoke([HumanMessage("Kivi necə becərilir?")])
    assert str(message.content) == compose(Grounding(question="Kivi necə becərilir?"))
    assert "bu suala uyğun material tapmadım" in str(message.content)


@pytest.mark.parametrize(
    ("question", "language", "expected"),
    [
        ("Sağ ol!", "az", "Buyurun!"),
        ("Təşəkkür edirəm", "az", "Buyurun!"),
        ("Thanks a lot", "en", "You're welcome!"),
        ("Спасибо большое", "ru", "Пожалуйста!"),
        ("Salam", "az", "Mən ALİM-əm"),
    ],
)
def test_thanks_get_a_short_answer_and_greetings_the_introduction(
    question: str, language: str, expected: str
) -> None:
    text = compose(Grounding(question=question, language=language, route="smalltalk"))
    assert expected in text
