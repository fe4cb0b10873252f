"""The playground page in real headless Chromium against a real `alim serve`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server
from tests.support.browser import SPLIT_STREAM_EVENTS, parse_split_stream

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
STREAM_REQUEST = b"POST /api/v1/graph/stream"


def ask_in_playground(browser: Any, url: str, user: str) -> Any:
    """Open the playground, sign in with the dev key, send the drought question; the page and
    the last answer bubble."""
    page = browser.new_page()
    page.goto(f"{url}/playground")
    page.fill("#apiKey", DEV_API_KEY)
    page.fill("#userId", user)
    page.fill("#message", "Quraqlıqda suvarmanı necə aparım?")
    page.click("#send")
    return page, page.locator(".msg.assistant").last


@pytest.mark.timeout(240)
def test_playground_streams_an_answer_with_sources(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is required (apt-get install chromium); .ci/run installs it")
    with running_server(tmp_path, ALIM_OFFLINE_DELAY="0.01") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page, answer = ask_in_playground(browser, url, "browser-farmer")
            expect(answer).to_have_attribute("data-done", "true", timeout=60_000)
            expect(answer).to_contain_text("Quraqlıqda suvarma")
            expect(answer.locator(".sources")).to_contain_text("Quraqlıqda suvarma")
            expect(page.locator("#progress")).to_contain_text("route")
            expect(page.locator("#progress")).to_contain_text("generate")
            expect(page.locator("#threads li")).to_have_count(1)
            # A CRLF that the network splits is one line end, not two (a token is not lost).
            assert parse_split_stream(page) == SPLIT_STREAM_EVENTS

            page.fill("#message", "Mənə aqronomla danışmaq lazımdır")
            page.click("#send")
            expect(page.locator("#banner")).to_be_visible(timeout=60_000)

            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / "playground.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
        finally:
            browser.close()


@pytest.mark.timeout(240)
def test_playground_resumes_a_stream_the_network_dropped(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.support.proxy import CuttingProxy

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is required (apt-get install chromium); .ci/run installs it")
    with (
        running_server(tmp_path, ALIM_OFFLINE_DELAY="0.02") as url,
        CuttingProxy(
            int(url.rsplit(":", 1)[1]), cut_request=(STREAM_REQUEST, 1500)
        ).running() as proxy,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            _, answer = ask_in_playground(browser, proxy.url, "browser-farmer-2")
            expect(answer).to_have_attribute("data-done", "true", timeout=60_000)
            assert proxy.cut == 1
            assert int(answer.get_attribute("data-resumes") or 0) >= 1
            shown = answer.evaluate("el => el.firstChild ? el.firstChild.textContent : ''")
        finally:
            browser.close()
        # The page shows the stored answer, whole and once.
        import httpx

        r = httpx.get(
            f"{url}/api/v1/threads",
            params={"user_id": "browser-farmer-2"},
            headers={"X-API-Key": DEV_API_KEY},
            trust_env=False,
        )
        thread_id = r.json()["threads"][0]["thread_id"]
        messages = httpx.get(
            f"{url}/api/v1/threads/{thread_id}",
            params={"user_id": "browser-farmer-2"},
            headers={"X-API-Key": DEV_API_KEY},
            trust_env=False,
        ).json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert shown == messages[1]["content"]
