"""Property-based fuzzing of the running server against its own OpenAPI schema (schemathesis):
every operation, valid and invalid inputs, stateful sequences. No 5xx; responses match the
schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from alim.settings import DEV_API_KEY
from tests.support.alim_serve import running_server

pytestmark = pytest.mark.slow
MIN_CASES = 500


@pytest.mark.timeout(600)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    cli = Path(sys.executable).with_name("schemathesis")
    with running_server(tmp_path, ALIM_RATE_LIMIT_PER_MINUTE="1000000") as url:
        result = subprocess.run(
            [
                str(cli),
                "run",
                f"{url}/openapi.json",
                "--header",
                f"X-API-Key: {DEV_API_KEY}",
                "--checks",
                "not_a_server_error,response_schema_conformance",
                "--max-examples",
                "30",
                "--seed",
                "7",
                "--wait-for-schema",
                "30",
                # The inbox's change stream never ends by design (tests/api/test_inbox.py).
                "--exclude-path",
                "/api/v1/escalations/events",
            ],
            capture_output=True,
            text=True,
            timeout=540,
        )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    assert counts is not None, output[-3000:]
    generated, passed = map(int, counts.groups())
    print(f"schemathesis: {generated} cases generated, {passed} passed")
    assert generated >= MIN_CASES
    assert passed == generated
