"""The TypeScript client (clients/typescript) as CI builds and tests it: `npm ci`, `npm run build`
(tsc: ES module and CommonJS builds with type declarations), the README example type-checked,
then its `node --test` suite against a real `alim serve` on 127.0.0.1 started here, and its ES
module build in headless Chromium, loaded by a page of another origin. Node and npm must be
installed (.ci/run installs Debian's); without them this test fails, it does not skip. npm's
cache lives in the clone (clients/typescript/.npm-cache), so a second run needs no network."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
NODE_TESTS = 34  # the suite's tests; fewer passing means some did not run


def npm(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run npm in the package; its output, or the test fails with it."""
    done = subprocess.run(
        ["npm", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=timeout, env=env
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{output[-6000:]}"
    return output


@pytest.fixture(scope="module")
def build() -> subprocess.Popen[str]:
    """`npm ci`, then tsc building in the background (the tests start their servers meanwhile)."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is not installed (CI installs Debian's nodejs and npm)"
    node_major = int(subprocess.check_output(["node", "--version"], text=True)[1:].split(".")[0])
    assert node_major >= 18, "the client needs Node 18 or newer"
    npm("ci", "--prefer-offline", "--no-audit", "--no-fund", "--cache", str(PACKAGE / ".npm-cache"))
    return subprocess.Popen(
        "npm run build && npm run typecheck",
        shell=True,
        cwd=PACKAGE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def built(build: subprocess.Popen[str]) -> None:
    """Wait for the build; the test fails with its output if it failed."""
    output, _ = build.communicate(timeout=180)
    assert build.returncode == 0, f"build or typecheck failed:\n{(output or '')[-6000:]}"


def test_the_typescript_client_suite_passes_against_a_real_server(
    tmp_path: Path, build: subprocess.Popen[str]
) -> None:
    # Another partner, for the tests that its datasets and documents stay its own.
    other_key = secrets.token_urlsafe(24)
    keys = json.dumps([f"otherco:{other_key}:chat+admin"])
    # Well above the ~50 requests of one run, so a rerun within a minute is not rate limited.
    with running_server(
        tmp_path, ALIM_RATE_LIMIT_PER_MINUTE="1000", ALIM_API_KEYS=keys
    ) as base_url:
        built(build)
        env = {
            **os.environ,
            "ALIM_URL": base_url,
            "ALIM_KEY": DEV_API_KEY,
            "ALIM_OTHER_KEY": other_key,
        }
        output = npm("test", env=env, timeout=240)
    # The package partners install: `npm pack` makes the tarball with both builds and types.
    npm("pack", "--pack-destination", str(tmp_path), "--cache", str(PACKAGE / ".npm-cache"))
    (tarball,) = tmp_path.glob("alim-client-*.tgz")
    with tarfile.open(tarball) as packed:
        names = set(packed.getnames())
    for built_file in ("dist/esm/index.js", "dist/esm/index.d.ts", "dist/cjs/index.js"):
        assert f"package/{built_file}" in names, sorted(names)

    summary = re.findall(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", output, re.M)
    counts = {name: int(n) for name, n in summary}
    expected = {"pass": NODE_TESTS, "fail": 0, "cancelled": 0, "skipped": 0, "todo": 0}
    assert counts == expected, output[-6000:]


BROWSER_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>partner app</title></head>
<body><pre id="out">running</pre><script type="module">
import { AlimClient, ApiError } from "/dist/esm/index.js";
const query = new URLSearchParams(location.search);
const alim = new AlimClient({ baseUrl: query.get("alim"), apiKey: query.get("key") });
const out = {};
try {
  const turn = { user_id: "browser-farmer", language: "az" };
  const first = await alim.invoke("Quraqlıqda suvarmanı necə aparım?", turn);
  out.invoke = first.response;
  out.types = [];
  out.streamed = "";
  for await (const event of alim.stream("Bəs pomidoru?", { ...turn, thread_id: first.thread_id })) {
    out.types.push(event.type);
    if (event.type === "token") out.streamed += event.text;
  }
  out.history = (await alim.threads.history(first.thread_id, "browser-farmer")).length;
  try {
    await new AlimClient({ baseUrl: query.get("alim"), apiKey: "wrong" }).invoke("x", turn);
  } catch (error) {
    out.refused = error instanceof ApiError ? [error.status, error.code] : String(error);
  }
} catch (error) {
  out.failure = String(error && error.stack || error);
}
document.getElementById("out").textContent = JSON.stringify(out);
</script></body></html>"""


@pytest.mark.timeout(300)
def test_the_es_module_build_works_in_a_browser(
    tmp_path: Path, build: subprocess.Popen[str]
) -> None:
    from playwright.sync_api import sync_playwright
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from tests.support.servers import free_port, serve_in_thread

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Chromium is required (.ci/run installs Debian's)"
    page_port = free_port()
    origin = f"http://127.0.0.1:{page_port}"
    with running_server(tmp_path, ALIM_CORS_ORIGINS=json.dumps([origin])) as base_url:
        built(build)
        app = Starlette(
            routes=[
                Route("/", lambda _: HTMLResponse(BROWSER_PAGE)),
                Mount("/dist", StaticFiles(directory=PACKAGE / "dist")),
            ]
        )
        with serve_in_thread(app, page_port), sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            try:
                page = browser.new_page()
                page.goto(f"{origin}/?alim={base_url}&key={DEV_API_KEY}")
                page.wait_for_function(
                    "document.getElementById('out').textContent !== 'running'", timeout=120_000
                )
                out = json.loads(page.inner_text("#out"))
            finally:
                browser.close()
    assert "failure" not in out, out.get("failure")
    assert "Quraqlıqda suvarma" in out["invoke"]  # cites the drought article
    assert out["types"][0] == "metadata" and out["types"][-1] == "done"
    assert "token" in out["types"] and out["streamed"].strip()
    assert out["history"] == 4  # two questions, two answers
    assert out["refused"] == [401, "invalid_api_key"]
