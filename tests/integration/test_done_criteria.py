"""The engine issue's "done" scenarios, end to end: the `alim` CLI as a user runs it, with the
real embedder, the bundled knowledge base and its real index, offline (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine import GraphDeps
from tests.conftest import REAL_CACHE
from tests.support.fake_llm import FakeLLM

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def alim(
    tmp_path: Path, *args: str, stdin: str | None = None, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALIM_")}
    env.update(
        ALIM_DATA_DIR=str(tmp_path),
        ALIM_INDEX_DIR=str(REAL_CACHE / "index"),
        ALIM_WEATHER_TIMEOUT="2",
        PYTHONPATH=str(ROOT),
        **env_vars,
    )
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=240,
    )


def run_json(tmp_path: Path, message: str, *extra: str) -> dict:
    out = alim(tmp_path, "run", message, "--json", *extra)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_drought_question_is_answered_in_azerbaijani_from_the_knowledge_base(
    real_deps: GraphDeps, tmp_path: Path
) -> None:
    out = alim(tmp_path, "run", "Fermada susuzluq var, nə edim?", "--user", "u1")
    assert out.returncode == 0, out.stderr
    # The answer leads with the drought article's advice, cited, with no preamble.
    assert out.stdout.lstrip().split("\n\n")[0].endswith("[1]"), out.stdout
    assert "su" in out.stdout.lower().split("\n\n")[0]
    assert "Mənbələr:" in out.stdout  # names its sources
    assert "Oflayn rejim" in out.stdout  # says it is the offline mode
    assert "→ retrieve" in out.stderr and "→ generate" in out.stderr  # progress on stderr
    result = run_json(tmp_path, "Fermada susuzluq var, nə edim?")
    assert result["route"] == "agronomy" and not result["escalated"]
    assert result["sources"][0]["id"] == "irrigation-drought.az"
    assert result["model"] == "alim-offline-retrieval"


def test_weather_question_goes_through_the_forecast_and_degrades_gracefully(
    real_deps: GraphDeps, tmp_path: Path
) -> None:
    out = alim(tmp_path, "run", "Will it rain in Quba this week?")
    assert out.returncode == 0, out.stderr
    assert "→ retrieve_weather" in out.stderr
    assert "The weather forecast for Quba is unavailable right now" in out.stdout


def test_asking_for_an_agronomist_escalates(real_deps: GraphDeps, tmp_path: Path) -> None:
    result = run_json(tmp_path, "Mənə aqronomla danışmaq lazımdır")
    assert result["escalated"] is True
    assert result["escalation_reason"] == "user_requested"
    assert "aqronom" in result["response"]
    listed = alim(tmp_path, "escalations", "list")
    assert result["escalation_id"] in listed.stdout


def test_a_pest_named_on_a_crop_whose_article_does_not_name_it_is_answered(
    real_deps: GraphDeps, tmp_path: Path
) -> None:
    """Aphids on greenhouse cucumbers: the greenhouse article says nothing of aphids, so the
    answer comes from the common pests article and names them."""
    result = run_json(tmp_path, "Как бороться с тлёй на огурцах в теплице?")
    assert not result["escalated"]
    assert "pests-common.ru" in [s["id"] for s in result["sources"]]
    assert "Тля" in result["response"].split("\n\n")[0], result["response"]


def test_bitcoin_is_declined_politely(real_deps: GraphDeps, tmp_path: Path) -> None:
    result = run_json(tmp_path, "Should I buy Bitcoin now?")
    assert result["route"] == "off_topic"
    assert result["escalated"] is False
    assert "I can only help with farming" in result["response"]


def test_a_thread_continues_across_invocations(real_deps: GraphDeps, tmp_path: Path) -> None:
    run_json(tmp_path, "Salam", "--user", "u2", "--thread", "t-1")
    run_json(
        tmp_path, "Pomidorda fitoftora necə müalicə olunur?", "--user", "u2", "--thread", "t-1"
    )
    shown = alim(tmp_path, "threads", "show", "t-1", "--user", "u2")
    assert shown.stdout.count("[user]") == 2
    assert shown.stdout.count("[assistant]") == 2


def test_eval_reports_its_figures(real_deps: GraphDeps, tmp_path: Path) -> None:
    out = alim(tmp_path, "eval", str(ROOT / "eval" / "questions.jsonl"))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    rows = (ROOT / "eval" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    assert report["questions"] == len([r for r in rows if r.strip()])
    # Regression guards well below the figures in the README (0.963 / 0.818).
    assert report["route_accuracy"] >= 0.9
    assert report["retrieval_hit_at_3"] >= 0.7


def test_graph_draws_mermaid_and_png(tmp_path: Path) -> None:
    png = tmp_path / "graph.png"
    out = alim(tmp_path, "graph", "--png", str(png))
    assert out.returncode == 0, out.stderr
    assert "route -.-> retrieve_weather" in out.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chat_reports_a_failed_turn_and_goes_on(
    real_deps: GraphDeps, tmp_path: Path, fake_llm: tuple[FakeLLM, str]
) -> None:
    """The hosted model fails the first turn (500, no retries, no fallback): `alim chat` prints
    the error and answers the next message in the same conversation."""
    llm, url = fake_llm
    llm.script = ["500", "ok"]
    out = alim(
        tmp_path,
        "chat",
        "--user",
        "u3",
        # A standalone second question: a follow-up would add the model's condensing call.
        stdin="Quraqlıqda suvarmanı necə etməli?\nPomidoru istixanada nə vaxt suvarım?\n",
        ALIM_LLM_PROVIDER="openai",
        ALIM_OPENAI_BASE_URL=f"{url}/v1",
        ALIM_OPENAI_API_KEY="test-key",
        ALIM_LLM_MAX_RETRIES="0",
        ALIM_LLM_FALLBACKS="[]",
    )
    assert out.returncode == 0, out.stderr
    assert "provider_unavailable" in out.stderr
    assert llm.reply in out.stdout  # the second turn was answered
    assert len(llm.requests) == 2
    threads = alim(tmp_path, "threads", "list", "--user", "u3")
    assert len(threads.stdout.strip().splitlines()) == 1  # one conversation, not two


def test_a_follow_up_goes_on_about_the_crop_and_the_knowledge_base_s_blind_spots_escalate(
    real_deps: GraphDeps, tmp_path: Path
) -> None:
    """'The grain' in a conversation about maize is the maize's (not a wheat question); a
    follow-up naming a crop no article covers is handed over, not answered about apples."""
    chat = ("--user", "u3", "--thread", "maize")
    run_json(tmp_path, "I'm growing grain maize in Zaqatala this year.", *chat)
    result = run_json(
        tmp_path, "What moisture should the grain be at when the combine goes in?", *chat
    )
    assert result["sources"][0]["id"] == "maize.en", result["sources"]
    assert "20–25%" in result["response"].split("\n\n")[0], result["response"]
    chat = ("--user", "u3", "--thread", "fruit")
    assert not run_json(tmp_path, "Когда обрезать яблоню?", *chat)["escalated"]
    assert run_json(tmp_path, "А малину?", *chat)["escalated"]


def test_the_sentence_that_answers_leads_though_retrieval_found_other_articles(
    real_deps: GraphDeps, tmp_path: Path
) -> None:
    """Wilting tomatoes brown inside the stem: the tomato and greenhouse articles come up first,
    the diseases article names the wilt."""
    result = run_json(
        tmp_path,
        "tomato plants wilting, cut the stem and its brown inside. what spray will cure it?",
    )
    assert result["sources"][0]["id"] == "diseases-common.en", result["sources"]
    assert "Fusarium wilt" in result["response"].split("\n\n")[0], result["response"]
