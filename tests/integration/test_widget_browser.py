"""The embeddable widget in real headless Chromium: a partner's page on a second local origin
(a tiny static server on 127.0.0.1, under a strict CSP) embeds `widget.js` from a real
`alim serve`, with a publishable key created by `alim keys create --scope public --origin`."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from tests.api.helpers import cli
from tests.support.alim_serve import running_server, server_env
from tests.support.servers import free_port, serve_in_thread

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
QUESTION = "Quraqlıqda suvarmanı necə aparım?"
WIDGET = "#alim-widget"

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Green Farm shop</title>
</head><body><h1>Green Farm shop</h1><p>Seeds, tools and advice.</p>
<script nonce="{nonce}">window.AlimConfig = {{ key: "{key}", position: "bottom-right",
  greeting: "Hello from Green Farm!", language: "en",
  theme: {{ primaryColor: "#1565c0" }}{config} }};</script>
<script src="{alim}/widget.js" async nonce="{nonce}"></script></body></html>"""


@contextmanager
def partner_site(alim: str, key: str, port: int, config: str = "") -> Iterator[str]:
    """The partner's page on 127.0.0.1:port; its CSP allows no inline style and only ALİM.
    `config`: more `AlimConfig` fields, as JavaScript (`stallSeconds: 2`)."""

    async def page(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(12)
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}' {alim}; connect-src {alim}; "
            "style-src 'none'; img-src 'none'; base-uri 'none'"
        )
        html = PAGE.format(nonce=nonce, key=key, alim=alim, config=f", {config}" if config else "")
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    with serve_in_thread(Starlette(routes=[Route("/", page)]), port) as url:
        yield url


@contextmanager
def embedded(tmp_path: Path, config: str = "", **env: str) -> Iterator[tuple[str, str, str, Any]]:
    """A real `alim serve` (`env`: its settings), a publishable key for a partner's page on a
    second local origin, that page (`config`: see `partner_site`) and headless Chromium: (ALİM's
    URL, the key, the page's URL, the browser)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is required (apt-get install chromium); .ci/run installs it")
    site_port = free_port()
    server = server_env(tmp_path)
    server.pop("VIRTUAL_ENV", None)
    origin = f"http://127.0.0.1:{site_port}"
    made = cli(server, "keys", "create", "green-farm", "--scope", "public", "--origin", origin)
    key = made.stdout.strip().splitlines()[-1]
    with (
        running_server(tmp_path, **env) as alim,
        partner_site(alim, key, site_port, config) as site,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield alim, key, site, browser
        finally:
            browser.close()


def widget(page: Any, selector: str) -> Any:
    """A locator inside the widget's (open) shadow root."""
    return page.locator(f"{WIDGET} {selector}")


def ask(page: Any, question: str) -> Any:
    """Type `question` into the open widget and send it: its answer's message."""
    widget(page, "textarea").fill(question)
    widget(page, "textarea").press("Enter")
    return widget(page, ".msg.assistant").last


def count_text_changes(page: Any) -> None:
    page.evaluate(
        """() => {
        window.__alimChanges = 0;
        const log = document.querySelector('#alim-widget').shadowRoot.querySelector('.log');
        new MutationObserver((list) => { window.__alimChanges += list.length; })
            .observe(log, { subtree: true, childList: true, characterData: true });
    }"""
    )


@pytest.mark.timeout(300)
def test_a_partner_page_embeds_the_widget(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    with embedded(tmp_path, ALIM_OFFLINE_DELAY="0.02") as (alim, key, site, browser):
        with partner_site(alim, key, free_port()) as stranger:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            page = context.new_page()
            page.goto(site)
            opener = page.get_by_role("button", name="Open the ALİM chat")
            opener.click()
            expect(widget(page, "textarea")).to_be_focused()
            expect(widget(page, ".msg.greeting")).to_have_text("ALİMHello from Green Farm!")
            # Styled inside the shadow root although the page allows no inline style.
            radius = widget(page, ".bubble").evaluate("b => getComputedStyle(b).borderRadius")
            assert radius == "50%"
            color = widget(page, ".bubble").evaluate("b => getComputedStyle(b).backgroundColor")
            assert color == "rgb(21, 101, 192)"

            count_text_changes(page)
            answer = ask(page, QUESTION)
            expect(answer).to_have_attribute("data-state", "done", timeout=90_000)
            expect(answer.locator(".text")).to_contain_text("Quraqlıqda suvarma")
            expect(answer.locator(".sources li").first).to_contain_text("Quraqlıqda suvarma")
            assert page.evaluate("window.__alimChanges") > 5  # the answer arrived in pieces
            shown = answer.locator(".text").text_content()
            live = widget(page, "[aria-live=polite]")
            expect(live).to_have_text(shown)
            page.get_by_role("button", name="The answer helped").click()
            expect(page.get_by_role("button", name="The answer helped")).to_have_attribute(
                "aria-pressed", "true"
            )
            expect(live).to_have_text("Thank you for your feedback!")
            page.screenshot(path=str(ARTIFACTS / "widget-answer.png"))

            # A reload keeps the conversation: token and thread in localStorage, history
            # from the API.
            page.reload()
            page.get_by_role("button", name="Open the ALİM chat").click()
            expect(widget(page, ".msg.user")).to_have_count(1)
            expect(widget(page, ".msg.user")).to_contain_text(QUESTION)
            restored = widget(page, ".msg.assistant").last
            expect(restored.locator(".text")).to_have_text(shown)
            expect(restored.locator(".sources li").first).to_contain_text("Quraqlıqda suvarma")

            # Asking for a person: the "passed to an agronomist" state.
            widget(page, "textarea").fill("Mənə aqronomla danışmaq lazımdır")
            widget(page, ".send").click()
            expect(widget(page, ".escalated")).to_be_visible(timeout=90_000)
            expect(widget(page, ".escalated")).to_contain_text("passed to an agronomist")
            page.screenshot(path=str(ARTIFACTS / "widget-escalated.png"))

            # Escape closes the panel and gives the focus back to the bubble.
            widget(page, "textarea").press("Escape")
            expect(widget(page, ".panel")).to_be_hidden()
            expect(widget(page, ".bubble")).to_be_focused()

            # A forged visitor token shows nothing of the thread: the widget starts afresh.
            storage = page.evaluate("Object.keys(localStorage)")
            (name,) = [k for k in storage if k.startswith("alim-widget:")]
            page.evaluate(
                """(name) => { const s = JSON.parse(localStorage.getItem(name));
                s.token = s.token.slice(0, -4) + (s.token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
                localStorage.setItem(name, JSON.stringify(s)); }""",
                name,
            )
            page.reload()
            page.get_by_role("button", name="Open the ALİM chat").click()
            expect(widget(page, ".msg.greeting")).to_be_visible()
            expect(widget(page, ".msg.user")).to_have_count(0)
            expect(widget(page, ".status")).to_be_empty()

            # A phone-sized screen: the panel takes the whole screen.
            phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True)
            small = phone.new_page()
            small.goto(site)
            small.get_by_role("button", name="Open the ALİM chat").click()
            box = widget(small, ".panel").bounding_box()
            assert box is not None and box["width"] == 375 and box["height"] == 740
            expect(widget(small, ".bubble")).to_be_hidden()  # it would cover the send button
            expect(widget(small, ".send")).to_be_in_viewport()
            small.screenshot(path=str(ARTIFACTS / "widget-phone.png"))

            # A page on an origin not on the key's list is refused.
            other = context.new_page()
            other.goto(stranger)
            other.get_by_role("button", name="Open the ALİM chat").click()
            expect(widget(other, ".status")).to_contain_text("not available", timeout=30_000)
            expect(widget(other, ".msg.user")).to_have_count(0)
            other.screenshot(path=str(ARTIFACTS / "widget-refused.png"))
        refused = httpx.post(
            f"{alim}/api/v1/widget/visitor",
            headers={"X-API-Key": key, "Origin": stranger},
            trust_env=False,
        )
        preflight = httpx.options(
            f"{alim}/api/v1/widget/visitor",
            headers={"Origin": stranger, "Access-Control-Request-Method": "POST"},
            trust_env=False,
        )
    assert refused.status_code == 403 and refused.json()["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in preflight.headers
    assert (ARTIFACTS / "widget-answer.png").stat().st_size > 10_000


def sse_events(text: str) -> list[ServerSentEvent]:
    """The events of an SSE body, by httpx-sse's spec decoder (an event cut off is not one)."""
    lines, decoder = SSELineDecoder(), SSEDecoder()
    found = (decoder.decode(line) for line in lines.decode(text))
    return [event for event in found if event is not None]


def inside_token(body: str, n: int) -> str:
    """`body` cut inside its `n`th token event: the tokens before it delivered whole."""
    nth = [m.start() for m in re.finditer("event: token", body)][n - 1]
    return body[: nth + 20]


@pytest.mark.timeout(300)
def test_the_widget_resumes_an_answer_whose_connection_dropped(tmp_path: Path) -> None:
    """A phone loses the stream mid-answer: the widget sends the question again with its
    `Idempotency-Key` and the last event it got, and shows the whole answer once. When the
    network stays down, it says so and marks the answer broken off, not done; while the phone
    says it is offline, it waits for the network instead."""
    from playwright.sync_api import expect

    with embedded(tmp_path, ALIM_OFFLINE_DELAY="0.02") as (_, _, site, browser):
        page = browser.new_page()
        sent: list[dict[str, str]] = []
        whole: list[str] = []

        def cut_the_first_stream(route: Any) -> None:
            if route.request.method != "POST":
                route.continue_()
                return
            sent.append(route.request.headers)
            if len(sent) > 1:
                route.continue_()
                return
            response = route.fetch()  # the whole stream, as the server sent it
            whole.append(response.text())
            route.fulfill(response=response, body=inside_token(whole[0], 5))

        page.route("**/api/v1/graph/stream", cut_the_first_stream)
        page.goto(site)
        page.get_by_role("button", name="Open the ALİM chat").click()
        answer = ask(page, QUESTION)
        expect(answer).to_have_attribute("data-state", "done", timeout=90_000)

        events = sse_events(whole[0])
        assert events[-1].event == "done"
        expect(answer.locator(".text")).to_have_text(
            "".join(e.data for e in events if e.event == "token")
        )
        expect(answer.locator(".sources li").first).to_be_visible()
        expect(widget(page, ".status")).to_be_empty()
        first, again = sent
        assert again["idempotency-key"] == first["idempotency-key"]
        assert "last-event-id" not in first
        delivered = sse_events(inside_token(whole[0], 5))
        assert again["last-event-id"] == delivered[-1].id
        assert [e.event for e in delivered].count("token") == 4

        # The network stays down: three more tries a few seconds apart, then a clear failure.
        page.unroute("**/api/v1/graph/stream")
        page.route("**/api/v1/graph/stream", lambda route: route.abort("internetdisconnected"))
        broken = ask(page, "Pomidorun yarpaqları saralır, nə edim?")
        expect(widget(page, ".status")).to_have_text("Connection lost, reconnecting…")
        expect(broken).to_have_attribute("data-state", "error", timeout=30_000)
        expect(widget(page, ".status")).to_contain_text("stream_interrupted")
        expect(widget(page, ".msg.user")).to_have_count(2)

        # A phone that says it is offline is waited for, past the retries' 7 s, and the answer
        # comes when it is back.
        page.unroute("**/api/v1/graph/stream")
        page.context.set_offline(True)
        waiting = ask(page, QUESTION)
        expect(widget(page, ".status")).to_have_text("Connection lost, reconnecting…")
        page.wait_for_timeout(9_000)
        expect(waiting).to_have_attribute("data-state", "streaming")
        page.context.set_offline(False)
        expect(waiting).to_have_attribute("data-state", "done", timeout=60_000)
        expect(waiting.locator(".text")).to_contain_text("Quraqlıqda suvarma")
        expect(widget(page, ".status")).to_be_empty()


@pytest.mark.timeout(300)
def test_the_widget_asks_again_for_a_stream_the_network_left_hanging(tmp_path: Path) -> None:
    """On a weak network a request can stay open and bring nothing, with no error to react to.
    A stream that brings nothing for `stallSeconds` is cut and asked for again with the same
    `Idempotency-Key`; a slow answer that keeps bringing tokens is left alone."""
    from playwright.sync_api import expect

    slow = {"ALIM_OFFLINE_DELAY": "0.15"}  # ~36 pieces: an answer takes several stall periods
    with embedded(tmp_path, config="stallSeconds: 1.5", **slow) as (_, _, site, browser):
        page = browser.new_page()
        sent: list[dict[str, str]] = []
        page.on(
            "request",
            lambda r: (
                sent.append(r.headers) if r.method == "POST" and "graph/stream" in r.url else None
            ),
        )
        page.goto(site)
        page.get_by_role("button", name="Open the ALİM chat").click()
        answer = ask(page, QUESTION)
        expect(answer).to_have_attribute("data-state", "done", timeout=90_000)
        expect(answer.locator(".text")).to_contain_text("Quraqlıqda suvarma")
        assert len(sent) == 1  # several stall periods long, never silent: asked once

        def hang_the_first(route: Any) -> None:
            if len(held) == 0:
                held.append(route)  # neither answered nor failed: the network holds it
            else:
                route.continue_()

        held: list[Any] = []
        page.route("**/api/v1/graph/stream", hang_the_first)
        hung = ask(page, QUESTION)
        expect(widget(page, ".status")).to_have_text("Connection lost, reconnecting…")
        expect(hung).to_have_attribute("data-state", "done", timeout=90_000)
        expect(hung.locator(".text")).to_contain_text("Quraqlıqda suvarma")
        expect(widget(page, ".status")).to_be_empty()
        first, again = sent[1:]
        assert again["idempotency-key"] == first["idempotency-key"]
        assert "last-event-id" not in again  # nothing had arrived to resume from

        # Cut four times in a row, each time after one more token: every try brought something,
        # so the widget goes on past its three retries and the answer arrives whole, once.
        page.unroute("**/api/v1/graph/stream")
        bodies: list[str] = []

        def cut_after_a_token(route: Any) -> None:
            if len(bodies) == 4:
                route.continue_()
                return
            response = route.fetch()
            bodies.append(response.text())
            route.fulfill(response=response, body=inside_token(bodies[-1], 2))

        page.route("**/api/v1/graph/stream", cut_after_a_token)
        cut = ask(page, QUESTION)
        expect(cut).to_have_attribute("data-state", "done", timeout=120_000)
        tokens = [e.data for e in sse_events(bodies[0]) if e.event == "token"]
        expect(cut.locator(".text")).to_have_text("".join(tokens))
        assert len(sent) == 3 + 5 and len({h["idempotency-key"] for h in sent[3:]}) == 1
