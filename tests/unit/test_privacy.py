"""Personal data and secrets stay out of logs: masking, also URL-encoded, and access-log lines
without query values (alim.privacy.PiiFilter on uvicorn's own record format)."""

from __future__ import annotations

import logging

import pytest

from alim.privacy import PiiFilter, mask_pii, without_query_values


def filtered(name: str, msg: str, *args: object) -> str:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    assert PiiFilter().filter(record)
    return record.getMessage()


@pytest.mark.parametrize(
    "text",
    [
        "zəng edin +994 50 123 45 67",
        "zəng edin %2B994%2050%20123%2045%2067",
        "zeng+edin+%2B994501234567",
        "yazın farmer%40example.az",
    ],
)
def test_phones_and_e_mails_are_masked_also_url_encoded(text: str) -> None:
    line = filtered("alim.api", "request text: %s", text)
    assert "123" not in line and "example.az" not in line, line
    assert "[telefon]" in line or "[e-poçt]" in line


def test_access_log_lines_keep_paths_not_query_values() -> None:
    line = filtered(
        "uvicorn.access",
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:50000",
        "GET",
        "/api/v1/threads?user_id=%2B994501234567&api_key=alim_s3cr3t&limit=5",
        "1.1",
        200,
    )
    assert "alim_s3cr3t" not in line and "994" not in line, line
    assert "/api/v1/threads?user_id=…&api_key=…&limit=…" in line


def test_text_without_personal_data_is_left_as_written() -> None:
    assert filtered("alim.api", "run %s took %d ms", "r-100%", 12) == "run r-100% took 12 ms"
    assert mask_pii("Pomidoru 25% nəmlikdə saxlayın") == "Pomidoru 25% nəmlikdə saxlayın"
    assert without_query_values("/health") == "/health"
