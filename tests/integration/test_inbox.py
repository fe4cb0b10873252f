"""The agronomists' inbox in real headless Chromium against a real `alim serve`: two browser
contexts are two agronomists of one partner, a third party (the partner's app) asks through the
API. Screenshots of the queue and the detail view go to test-artifacts/."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.alim_serve import running_server
from tests.support.browser import SPLIT_STREAM_EVENTS, parse_split_stream

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
XSS = "<img src=x onerror=alert(1)> Pomidor yarpaqları saralır, aqronomla danışmaq istəyirəm"
EDIT = "\nAqronom Aygün: suvarmanı səhərə keçirin, azotu iki dəfəyə bölün."


def sign_in(browser: Any, url: str, key: str, name: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.on("dialog", lambda d: pytest.fail(f"a dialog opened: {d.message}"))
    page.goto(f"{url}/inbox")
    page.fill("#apiKey", key)
    page.fill("#agentName", name)
    page.click("#signInButton")
    page.wait_for_selector("#app:not([hidden])")
    return page


@pytest.mark.timeout(300)
def test_two_agronomists_share_the_queue_and_one_answers(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is required (apt-get install chromium); .ci/run installs it")
    chat_key, agent_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    keys = json.dumps([f"farmco:{chat_key}:chat", f"farmco:{agent_key}:agent"])
    farmer = {"X-API-Key": chat_key}
    with (
        running_server(tmp_path, ALIM_OFFLINE_DELAY="0.01", ALIM_API_KEYS=keys) as url,
        httpx.Client(base_url=url, headers=farmer, timeout=30, trust_env=False) as api,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            a = sign_in(browser, url, agent_key, "Aygün", {"width": 1280, "height": 900})
            b = sign_in(browser, url, agent_key, "Rauf", {"width": 390, "height": 844})  # a phone
            expect(a.locator("#who")).to_contain_text("farmco")
            # A CRLF that the network splits is one line end, not two (an event is not lost).
            assert parse_split_stream(a) == SPLIT_STREAM_EVENTS
            expect(a.locator("#empty")).to_be_visible()

            # A farmer asks for a person; both inboxes show it within 5 s, no reload.
            asked = time.monotonic()
            turn = api.post(
                "/api/v1/graph/invoke",
                json={
                    "message": XSS,
                    "user_id": "farmer-1",
                    "profile": {"region": "Quba", "crops": ["pomidor"]},
                },
            )
            assert turn.status_code == 200, turn.text
            escalation_id, thread_id = turn.json()["escalation_id"], turn.json()["thread_id"]
            item = f'#queue li[data-id="{escalation_id}"]'
            expect(a.locator(item)).to_be_visible(timeout=5_000)
            expect(b.locator(item)).to_be_visible(timeout=5_000)
            assert time.monotonic() - asked < 6
            # The farmer's text is text: shown literally, no element made of it, nothing ran.
            expect(a.locator(item + " .q")).to_contain_text("<img src=x onerror=alert(1)>")
            assert a.locator("#queue img").count() == 0
            expect(a.locator(item)).to_contain_text("Quba")
            expect(a.locator(item)).to_contain_text("pomidor")

            # The farmer writes again while waiting.
            more = api.post(
                "/api/v1/graph/invoke",
                json={
                    "message": "Yarpaqların altı da saralıb",
                    "user_id": "farmer-1",
                    "thread_id": thread_id,
                },
            )
            assert more.status_code == 200, more.text

            # A claims it; B sees it taken; B's claim is refused.
            a.click(item)
            expect(a.locator("#detail")).to_have_attribute("data-id", escalation_id)
            b.click(item)
            expect(b.locator("#detail")).to_have_attribute("data-id", escalation_id)
            a.click("#claim")
            expect(a.locator("#claimState")).to_have_text("Sizdədir")
            expect(b.locator("#detail")).to_have_attribute(
                "data-claimed-by", "Aygün", timeout=5_000
            )
            expect(b.locator("#claimState")).to_contain_text("Aygün")
            expect(b.locator("#answer")).to_be_disabled()
            b.click("#back")
            expect(b.locator(item + " .claimTag")).to_contain_text("Aygün")
            b.click(item)
            b.click("#claim")
            expect(b.locator("#actionError")).to_have_attribute("data-code", "escalation_claimed")

            # A reads the conversation, the waiting message and the passages; edits the draft.
            expect(a.locator("#conversation")).to_contain_text("<img src=x onerror=alert(1)>")
            assert a.locator("#conversation img, #detail img").count() == 0
            expect(a.locator("#conversation .msg.waiting")).to_contain_text(
                "Yarpaqların altı da saralıb"
            )
            expect(a.locator("#passages li").first).to_contain_text("(")
            draft = a.locator("#draft").input_value()
            assert draft.strip(), "ALİM's draft is the starting point"
            a.select_option("#lang", "en")
            expect(a.locator("#claim")).to_have_text("Claim")
            expect(a.locator("#conversation .who").first).to_have_text("Farmer")
            expect(a.locator("#live")).to_have_text("Live")
            assert a.locator("#draft").input_value() == draft, "a language switch keeps edits"
            ARTIFACTS.mkdir(exist_ok=True)
            a.screenshot(path=str(ARTIFACTS / "inbox-detail.png"), full_page=True)
            b.click("#back")
            b.screenshot(path=str(ARTIFACTS / "inbox-queue-phone.png"), full_page=True)
            a.locator("#draft").fill(draft + EDIT)
            a.click("#answer")
            expect(a.locator("#done")).to_have_text("Answer sent.")
            expect(a.locator(item)).to_have_count(0)
            expect(b.locator(item)).to_have_count(0, timeout=5_000)
            a.click("#back")
            a.screenshot(path=str(ARTIFACTS / "inbox-queue.png"), full_page=True)
            assert a.locator("#queue img").count() == 0
        finally:
            browser.close()

        # The farmer's history shows A's answer, from a person; the bot answers again.
        messages = api.get(f"/api/v1/threads/{thread_id}", params={"user_id": "farmer-1"}).json()[
            "messages"
        ]
        assert messages[-1]["role"] == "assistant" and messages[-1]["from_human"] is True
        assert messages[-1]["content"] == (draft + EDIT).strip()
        again = api.post(
            "/api/v1/graph/invoke",
            json={
                "message": "Pomidoru nə vaxt suvarım?",
                "user_id": "farmer-1",
                "thread_id": thread_id,
            },
        )
        assert again.status_code == 200 and again.json()["escalated"] is False
        assert again.json()["route"] != "human"
    for shot in ("inbox-queue.png", "inbox-detail.png", "inbox-queue-phone.png"):
        assert (ARTIFACTS / shot).stat().st_size > 10_000


def test_the_inbox_page_is_served_under_a_strict_csp(tmp_path: Path) -> None:
    with running_server(tmp_path) as url:
        for path in ("/inbox", "/inbox/inbox.js", "/inbox/inbox.css"):
            r = httpx.get(url + path, trust_env=False)
            assert r.status_code == 200
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        page = httpx.get(url + "/inbox", trust_env=False).text
        assert "<script>" not in page and "http" not in page.replace('"/inbox', "")
