"""The TypeScript client (clients/typescript) as CI builds and tests it: `npm ci`, `npm run build`
(tsc: ES module and CommonJS builds with type declarations), the README example type-checked,
then its `node --test` suite against a real `alim serve` on 127.0.0.1 started here. Node and
npm must be installed (.ci/run installs Debian's); without them this test fails, it does not
skip. npm's cache lives in the clone (clients/typescript/.npm-cache), so a second run needs no
network."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"
NODE_TESTS = 29  # the suite's tests; fewer passing means some did not run


def npm(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run npm in the package; its output, or the test fails with it."""
    done = subprocess.run(
        ["npm", *args], cwd=PACKAGE, capture_output=True, text=True, timeout=timeout, env=env
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"npm {' '.join(args)} failed:\n{output[-6000:]}"
    return output


def test_the_typescript_client_suite_passes_against_a_real_server(tmp_path: Path) -> None:
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is not installed (CI installs Debian's nodejs and npm)"
    node_major = int(subprocess.check_output(["node", "--version"], text=True)[1:].split(".")[0])
    assert node_major >= 18, "the client needs Node 18 or newer"
    npm("ci", "--prefer-offline", "--no-audit", "--no-fund", "--cache", str(PACKAGE / ".npm-cache"))
    # tsc builds while the server starts (both take seconds).
    build = subprocess.Popen(
        "npm run build && npm run typecheck",
        shell=True,
        cwd=PACKAGE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Well above the ~50 requests of one run, so a rerun within a minute is not rate limited.
    with running_server(tmp_path, ALIM_RATE_LIMIT_PER_MINUTE="1000") as base_url:
        built, _ = build.communicate(timeout=180)
        assert build.returncode == 0, f"build or typecheck failed:\n{built[-6000:]}"
        env = {**os.environ, "ALIM_URL": base_url, "ALIM_KEY": DEV_API_KEY}
        output = npm("test", env=env, timeout=240)

    summary = re.findall(r"^# (pass|fail|cancelled|skipped|todo) (\d+)$", output, re.M)
    counts = {name: int(n) for name, n in summary}
    expected = {"pass": NODE_TESTS, "fail": 0, "cancelled": 0, "skipped": 0, "todo": 0}
    assert counts == expected, output[-6000:]
