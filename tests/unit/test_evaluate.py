"""`alim eval`'s scoring on hand-made answers, and one small run through the real engine."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from alim.errors import ConfigError, InvalidRequest
from alim.events import TurnResult
from cli.evaluate import (
    EvalReport,
    Outcome,
    Scores,
    answer_body,
    answer_language,
    evaluate,
    first_words,
    format_table,
    judge,
    key_fact_early,
    key_fact_present,
    parse_split,
    select,
)
from engine import GraphDeps
from tests.conftest import make_settings
from tests.support.fakes import HashingEmbeddings

UREA = [r"(?<!\d)220\s*(?:kq|kg|кг)"]
RANGE = [r"(?<![\d.,])90\s*(?:[–—−-]|…|\.\.\.|to|до|ilə)\s*120(?![\d])"]
FILLER = " ".join(f"word{i}" for i in range(70))

AZ = (
    "Bilik bazamızdakı tövsiyələrə əsasən:\n\n**Buğda** [1]: Azotu yazda kollanma fazasında "
    "verin, hektara 220 kq karbamid kifayətdir.\n\nMənbələr: [1] Buğda\n\n"
    "_Oflayn rejim: cavab bilik bazasındakı mətnlərdən seçilib, dil modeli istifadə olunmayıb._"
)
EN = (
    "Based on the guidance in our knowledge base:\n\n**Wheat** [1]: Give the nitrogen at "
    "tillering, in spring, and split it when the rate is high.\n\nSources: [1] Wheat\n\n"
    "_Offline mode: this answer is assembled from knowledge-base passages; no language "
    "model was used._"
)
RU = (
    "По материалам нашей базы знаний:\n\n**Пшеница** [1]: Азот вносят весной в фазе "
    "кущения, дробно.\n\nИсточники: [1] Пшеница\n\n"
    "_Офлайн-режим: ответ составлен из фрагментов базы знаний, языковая модель не "
    "использовалась._"
)


def row(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "r1",
        "split": "dev",
        "lang": "az",
        "kind": "fact",
        "question": "Buğdaya nə qədər karbamid?",
        "route": "agronomy",
        "expected_groups": ["wheat"],
        "key_fact": UREA,
        "escalate": False,
    }
    base.update(values)
    return base


def result(response: str, *, route: str = "agronomy", escalated: bool = False, **kw: Any) -> Any:
    return TurnResult(
        response=response,
        thread_id="t",
        model="alim-offline-retrieval",
        run_id="r",
        route=route,
        confidence=0.5,
        escalated=escalated,
        escalation_reason=kw.get("reason"),
    )


# ------------------------------------------------------------------------------ key facts
def test_a_key_fact_early_in_the_answer_counts_for_both_figures() -> None:
    answer = "Hektara 220 kq karbamid verin. " + FILLER
    assert key_fact_present(answer, UREA)
    assert key_fact_early(answer, UREA)


def test_a_key_fact_after_60_words_is_present_but_not_early() -> None:
    answer = FILLER + " Hektara 220 kq karbamid verin."
    assert key_fact_present(answer, UREA)
    assert not key_fact_early(answer, UREA)


def test_the_60th_word_is_still_early_and_the_61st_is_not() -> None:
    words = [f"w{i}" for i in range(59)]
    assert key_fact_early(" ".join([*words, "220kq"]), UREA)
    assert not key_fact_early(" ".join([*words, "x", "220kq"]), UREA)


def test_first_words_keeps_the_spacing_of_the_answer() -> None:
    assert first_words("a\n\nb  c d", 3) == "a\n\nb  c"
    assert first_words("short answer", 60) == "short answer"


def test_key_facts_match_case_insensitively_with_either_dash_and_nfc() -> None:
    assert key_fact_present("Wheat needs 90–120 kg N", RANGE)
    assert key_fact_present("Wheat needs 90-120 kg N", RANGE)
    assert key_fact_present("90 TO 120", RANGE)
    assert not key_fact_present("90 or 120", RANGE)
    decomposed = "payızda dərin s\u0327um edin"  # s + combining cedilla: NFC makes it ş
    assert key_fact_present(decomposed, ["dərin şum"])


def test_no_pattern_matches_nothing() -> None:
    assert not key_fact_present("anything", [])


# ------------------------------------------------------------------------------ language
@pytest.mark.parametrize(("answer", "lang"), [(AZ, "az"), (EN, "en"), (RU, "ru")])
def test_the_language_of_an_offline_answer(answer: str, lang: str) -> None:
    assert answer_language(answer) == lang


def test_the_footer_and_sources_do_not_decide_the_language() -> None:
    """An answer composed of Russian passages is Russian, whatever its frame says."""
    mixed = (
        "Based on the guidance in our knowledge base:\n\n(On this topic our material is only "
        "in another language for now.)\n\n**Пшеница** [1]: Азот вносят весной в фазе кущения, "
        "дробно, в два приёма, по мерзлоталой почве. "
        "Вторую подкормку дают в начале выхода в трубку, если посевы густые и влаги "
        "достаточно.\n\nSources: [1] Пшеница\n\n"
        "_Offline mode: this answer is assembled from knowledge-base passages; no language "
        "model was used._"
    )
    assert "Sources" not in answer_body(mixed)
    assert "Offline mode" not in answer_body(mixed)
    assert "[1]" not in answer_body(mixed)
    assert answer_language(mixed) == "ru"


def test_names_with_azerbaijani_letters_do_not_make_an_answer_azerbaijani() -> None:
    assert answer_language("Hello! I am ALİM, an agronomy assistant for farmers.") == "en"
    en = "Harvest mandarins in Lənkəran and Astara when the fruit colours. Store them cool."
    assert answer_language(en) == "en"
    az = "Lənkəranda naringi meyvə rəngləndikdə yığılır. Sərin yerdə saxlayın."
    assert answer_language(az) == "az"
    assert answer_language("Salam! Mən ALİM-əm — fermerlər üçün aqronomiya köməkçisi.") == "az"


def test_an_answer_without_letters_has_no_language() -> None:
    assert answer_language("") is None
    assert judge(row(kind="smalltalk", key_fact=[]), result("")).language_ok is False


# ------------------------------------------------------------------------------ judging
def test_judge_a_fact_row() -> None:
    o = judge(row(), result(AZ), top3=["wheat", "cotton"])
    assert (o.key_fact, o.key_fact_early, o.language_ok, o.retrieval_hit) == (
        True,
        True,
        True,
        True,
    )
    assert o.failures() == []
    assert o.miss() is None


def test_an_escalated_fact_row_misses_its_key_fact_and_is_not_judged_for_language() -> None:
    o = judge(row(), result("Sualınızı aqronoma ötürürəm: 220 kq", escalated=True))
    assert o.key_fact is False
    assert o.language_ok is None
    assert set(o.failures()) == {"key_fact", "escalation"}


def test_a_miss_says_what_failed() -> None:
    o = judge(row(lang="en"), result(AZ + " " * 300 + "x", route="smalltalk"), top3=["cotton"])
    miss = o.miss()
    assert miss is not None
    assert miss["failed"] == ["route", "language", "retrieval"]
    assert miss["route"] == {"expected": "agronomy", "got": "smalltalk"}
    assert miss["answer_language"] == "az"
    o = judge(row(lang="en"), result(FILLER))
    miss = o.miss()
    assert miss is not None and miss["failed"] == ["key_fact"]
    assert miss["answer"] == FILLER[:200]


def test_a_human_request_must_escalate_with_user_requested() -> None:
    human = row(kind="human", route="human", key_fact=[], escalate=True, expected_groups=[])
    assert (
        judge(
            human, result("...", route="human", escalated=True, reason="user_requested")
        ).failures()
        == []
    )
    wrong = judge(human, result("...", route="human", escalated=True, reason="low_confidence"))
    assert wrong.failures() == ["escalation"]


def test_a_failed_turn_is_an_error_and_a_miss() -> None:
    o = judge(row(), None, error="provider_unavailable: down")
    assert o.failures() == ["error", "route", "key_fact"]


# ------------------------------------------------------------------------------ arithmetic
def outcome(kind: str, escalated: bool, reason: str | None = None, **kw: Any) -> Outcome:
    return Outcome(
        id="x",
        split=kw.get("split", "dev"),
        lang=kw.get("lang", "az"),
        kind=kind,
        question="q",
        expected_route=kw.get("expected_route", "agronomy"),
        expected_escalate=kind in ("uncovered", "human"),
        route=kw.get("route", "agronomy"),
        escalated=escalated,
        escalation_reason=reason,
    )


def test_escalation_precision_and_recall() -> None:
    outcomes = [
        outcome("uncovered", True),
        outcome("uncovered", True),
        outcome("uncovered", False),
        outcome("uncovered", True),  # 3 of 4 uncovered escalated: recall 0.75
        outcome("fact", True),  # 4 escalations not human, 3 of them uncovered: precision 0.75
        outcome("fact", False),
        outcome("smalltalk", True),  # 5th escalation: precision 3/5
        outcome("human", True, "user_requested"),  # not in precision
        outcome("human", True, "low_confidence"),  # escalated, but not as a request
    ]
    s = Scores.of(outcomes)
    assert s.uncovered_recall == 0.75
    assert s.uncovered_precision == 0.6
    d = s.as_dict()
    assert d["human_requests_escalated"] == 0.5
    assert d["over_escalation"] == round(2 / 3, 3)  # fact, fact, smalltalk: 2 escalated
    assert d["smalltalk_escalated"] == 1
    assert d["escalation_agreement"] == round(6 / 9, 3)


def test_rates_with_nothing_to_count_are_none() -> None:
    d = Scores.of([outcome("smalltalk", False)]).as_dict()
    assert d["uncovered_escalation_recall"] is None
    assert d["uncovered_escalation_precision"] is None
    assert d["key_fact_present"] is None
    assert d["route_accuracy"] == 1.0


def test_the_report_has_each_split_each_language_and_all() -> None:
    report = EvalReport(
        [
            outcome("fact", False, split="dev", lang="az"),
            outcome("fact", False, split="dev", lang="ru", route="weather"),
            outcome("uncovered", True, split="test", lang="en"),
        ]
    )
    d = report.as_dict()
    assert list(d["splits"]) == ["dev", "test", "all"]
    assert d["splits"]["dev"]["route_accuracy"] == 0.5
    assert d["splits"]["dev"]["by_language"]["ru"]["route_accuracy"] == 0.0
    assert d["splits"]["test"]["uncovered_escalation_recall"] == 1.0
    assert d["questions"] == 3
    assert d["route_accuracy_by_language"] == {"az": 1.0, "en": 1.0, "ru": 0.0}
    assert len(d["misses"]) == 1
    table = format_table(report)
    assert "split dev" in table and "split test" in table and "split all" in table
    assert "0.500 1/2" in table
    json.dumps(d)
    assert list(EvalReport(report.outcomes, split="dev").as_dict()["splits"]) == ["dev"]


def test_split_selection_and_limit() -> None:
    rows = [row(id="a", split="dev"), row(id="b", split="test"), row(id="c", split="dev")]
    assert [r["id"] for r in select(rows, "dev")] == ["a", "c"]
    assert [r["id"] for r in select(rows, "all", limit=2)] == ["a", "b"]
    assert parse_split("test") == "test"
    with pytest.raises(ValueError):
        parse_split("train")


# ------------------------------------------------------------------------------ a real run
def test_evaluate_replays_a_follow_up_in_its_own_thread(tmp_path: Path) -> None:
    rows = [
        row(
            id="f1",
            lang="en",
            question="How should I irrigate in a drought?",
            expected_groups=["drought"],
            key_fact=["(?:morning|evening)"],
        ),
        row(
            id="f2",
            lang="en",
            kind="followup",
            history=["How should I irrigate in a drought?"],
            question="And what about mulch?",
            expected_groups=["drought"],
            key_fact=["mulch"],
        ),
        row(
            id="f3", lang="en", kind="smalltalk", question="Hello!", key_fact=[], route="smalltalk"
        ),
        row(id="f4", split="test", lang="ru", question="Как защитить пшеницу?", key_fact=[]),
    ]
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    settings = make_settings(tmp_path, llm_provider="groq")  # evaluate() forces offline
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())

    report = asyncio.run(evaluate(path, settings, deps))

    by_id = {o.id: o for o in report.outcomes}
    assert [o.id for o in report.outcomes] == ["f1", "f2", "f3", "f4"]
    assert by_id["f2"].user_turns == 2  # the history turn, then the question, in one thread
    assert by_id["f1"].user_turns == 1
    assert len({o.thread_id for o in report.outcomes}) == 4  # no row shares a thread
    assert {o.model for o in report.outcomes} == {"alim-offline-retrieval"}
    assert by_id["f2"].retrieval_hit is None  # a follow-up's question is not searched alone
    assert by_id["f1"].retrieval_hit is True
    assert all(o.error is None for o in report.outcomes)
    d = report.as_dict()
    assert list(d["splits"]) == ["dev", "test", "all"]
    assert d["splits"]["test"]["questions"] == 1

    only_dev = asyncio.run(evaluate(path, settings, deps, split="dev", limit=2))
    assert [o.id for o in only_dev.outcomes] == ["f1", "f2"]


def test_an_unconfigured_model_fails_before_any_row_runs(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps(row()), encoding="utf-8")
    settings = make_settings(tmp_path)
    deps = GraphDeps(settings, _embeddings=HashingEmbeddings())
    with pytest.raises(ConfigError):
        asyncio.run(evaluate(path, settings, deps, model="groq"))
    with pytest.raises(InvalidRequest):
        asyncio.run(evaluate(path, settings, deps, model="nonsense"))
