"""The default router: rules, then a nearest-exemplar vote (alim/routing.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alim.routing import ROUTES, SemanticRouter, bundled_exemplars, names_a_person
from tests.support.fakes import CountingEmbeddings, HashingEmbeddings


@pytest.fixture
def router(embeddings: HashingEmbeddings) -> SemanticRouter:
    return SemanticRouter(embeddings)


# ---------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    "text",
    [
        "Mənə aqronomla danışmaq lazımdır",
        "I want to talk to a human",
        "Соедините меня со специалистом",
        "Aqronomla əlaqə saxlamaq istəyirəm",
        "Can I speak to an agronomist?",
        "Хочу поговорить с агрономом",
        "connect me to a live consultant",  # 'консультант' and 'məsləhətçi' were listed
    ],
)
def test_a_request_for_a_person_goes_to_a_human(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is not None
    assert decision.route == "human"
    assert decision.needs_question is False


@pytest.mark.parametrize(
    "text",
    [
        "Salam, əkinçiliklə bağlı sualım var.",
        "Salam, sualım var",
        "Hello, I have a question about farming",
        "Здравствуйте, у меня есть вопрос по сельскому хозяйству",
    ],
)
def test_an_announced_farming_question_invites_the_question(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is not None
    assert decision.route == "agronomy"
    assert decision.needs_question is True


@pytest.mark.parametrize(
    "text",
    [
        "Salam, pomidorum saralır, nə edim?",
        "Salam, sualım var: pomidorum saralır",
        "Hello, I have a question about farming: my wheat has rust",
    ],
)
def test_a_greeting_with_a_real_question_is_not_intent_only(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is None or not decision.needs_question


@pytest.mark.parametrize(
    "text",
    [
        "Bitcoin almaq istəyirəm",
        "What is the bitcoin price today?",
        "Где купить биткоин?",
        # Shares name a company, not a fruit.
        "Сколько сейчас стоят акции Apple?",
        "Should I buy Apple shares?",
    ],
)
def test_bitcoin_is_off_topic(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is not None
    assert decision.route == "off_topic"


def test_an_ordinary_question_is_left_to_the_semantic_vote() -> None:
    assert SemanticRouter.rules("Pomidoru nə qədər tez-tez suvarmalıyam?") is None
    assert SemanticRouter.rules("Sabah Qubada yağış olacaq?") is None


@pytest.mark.parametrize(
    "text",
    [
        "Агроном сказал дать азот под пшеницу, сколько нужно на гектар?",
        "Aqronom dedi ki, pomidora azot vermək lazımdır, nə qədər?",
        "my agronomist told me I need lime, how much per hectare?",
    ],
)
def test_a_person_only_quoted_is_not_asked_for(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is None or decision.route != "human"
    assert not names_a_person(text)


@pytest.mark.parametrize(
    "text",
    [
        "Агроном сказал дать азот, но я хочу поговорить с другим агрономом",
        "aqronom məsləhət versin, zəng edin",
    ],
)
def test_a_person_asked_for_beside_a_quote_still_is(text: str) -> None:
    decision = SemanticRouter.rules(text)
    assert decision is not None
    assert decision.route == "human"


def test_rules_win_over_the_vote(router: SemanticRouter) -> None:
    decision = router.classify("Mənə aqronomla danışmaq lazımdır")
    assert (decision.route, decision.method) == ("human", "rule:person_requested")


# ---------------------------------------------------------------------------- semantic vote


@pytest.mark.parametrize("text", ["Salam", "salam", "Hello"])
def test_a_greeting_is_smalltalk(router: SemanticRouter, text: str) -> None:
    assert router.classify(text).route == "smalltalk"


@pytest.mark.parametrize("text", ["suvarma cədvəli", "suvarma cedveli"])
def test_irrigation_schedule_is_agronomy(router: SemanticRouter, text: str) -> None:
    decision = router.classify(text)
    assert decision.route == "agronomy"
    assert decision.needs_question is False
    assert decision.method.startswith("semantic")


def test_a_weather_question_is_weather(router: SemanticRouter) -> None:
    assert router.classify("Sabah Qubada yağış olacaq?").route == "weather"


@pytest.mark.parametrize(
    "text",
    ["Quba", "Qubada", "Şəkidə", "Lənkəran", "Baku", "Şamaxı", "Şamaxıda üzüm sortları"],
)
def test_a_place_name_without_weather_words_is_never_weather(
    router: SemanticRouter, text: str
) -> None:
    decision = router.classify(text)
    assert decision.route != "weather"
    assert decision.route in ROUTES


def test_the_vote_gives_a_score(router: SemanticRouter) -> None:
    decision = router.classify("suvarma cədvəli")
    assert 0.0 < decision.score <= 1.0


def test_bundled_exemplars_cover_every_route_in_three_languages() -> None:
    exemplars = bundled_exemplars()
    assert set(exemplars) == set(ROUTES)
    for route, texts in exemplars.items():
        assert len(texts) >= 9, route
        assert all(t.strip() for t in texts), route


# ---------------------------------------------------------------------------- exemplar cache


def test_exemplar_vectors_are_cached_as_npy_and_reused(tmp_path: Path) -> None:
    n_exemplars = sum(len(v) for v in bundled_exemplars().values())
    cache = tmp_path / "cache"

    first_embedder = CountingEmbeddings()
    first = SemanticRouter(first_embedder, cache_dir=cache)
    first_decision = first.classify("suvarma cədvəli")
    assert len(first_embedder.queries) == n_exemplars + 1  # the exemplars, then the query
    files = list(cache.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".npy"
    matrix = np.load(files[0], allow_pickle=False)
    assert matrix.shape == (n_exemplars, first_embedder.dim)

    second_embedder = CountingEmbeddings()
    second = SemanticRouter(second_embedder, cache_dir=cache)
    assert second.classify("suvarma cədvəli") == first_decision
    assert second_embedder.queries == ["suvarma cədvəli"]  # only the query, no exemplar


def test_the_exemplar_matrix_is_computed_once_per_router(tmp_path: Path) -> None:
    embedder = CountingEmbeddings()
    router = SemanticRouter(embedder)
    router.classify("suvarma cədvəli")
    after_first = len(embedder.queries)
    router.classify("Salam")
    assert len(embedder.queries) == after_first + 1


def test_other_exemplars_do_not_reuse_the_cache(tmp_path: Path) -> None:
    SemanticRouter(CountingEmbeddings(), cache_dir=tmp_path).classify("Salam")
    exemplars = bundled_exemplars()
    exemplars["smalltalk"] = [*exemplars["smalltalk"], "Necəsən, qardaş?"]
    embedder = CountingEmbeddings()
    SemanticRouter(embedder, exemplars, cache_dir=tmp_path).classify("Salam")
    assert "Necəsən, qardaş?" in embedder.queries
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_a_damaged_cache_is_recomputed(tmp_path: Path) -> None:
    SemanticRouter(CountingEmbeddings(), cache_dir=tmp_path).classify("Salam")
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"not a numpy file")
    embedder = CountingEmbeddings()
    decision = SemanticRouter(embedder, cache_dir=tmp_path).classify("Salam")
    assert decision.route == "smalltalk"
    assert len(embedder.queries) > 1
    assert np.load(path, allow_pickle=False).ndim == 2  # rewritten


@pytest.mark.parametrize(
    ("text", "person"),
    [
        ("Переведите меня на сотрудника", True),
        ("Kimsə mənə zəng etsin", True),
        ("Can you call me back?", True),
        ("А вместе с картошкой в одном подвале можно?", False),
        ("Bəs pomidoru?", False),
    ],
)
def test_a_person_to_talk_to_is_recognised(text: str, person: bool) -> None:
    assert names_a_person(text) is person
