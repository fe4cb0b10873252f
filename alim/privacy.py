"""Masking of personal data before text leaves the process (hosted LLMs) and in logs.

Masked: Azerbaijani phone numbers (+994 / 994 / 0 followed by an operator or area code and seven
digits, with spaces, dashes, dots or brackets), FIN codes (the 7-character personal identifier
on Azerbaijani ID cards: capital Latin letters and digits with at least one of each), and
e-mail addresses. The stored thread keeps what the user wrote.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

PHONE = re.compile(
    r"(?<![\w+])(?:\+?994|0)[\s.\-]?\(?\d{2}\)?[\s.\-]?\d{3}[\s.\-]?\d{2}[\s.\-]?\d{2}(?!\d)"
)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
FIN = re.compile(r"\b(?=[A-Z0-9]{7}\b)(?=[A-Z0-9]*\d)(?=[A-Z0-9]*[A-Z])[A-Z0-9]{7}\b")

PHONE_MASK = "[telefon]"
EMAIL_MASK = "[e-poçt]"
FIN_MASK = "[FİN]"


def mask_pii(text: str) -> str:
    text = EMAIL.sub(EMAIL_MASK, text)
    text = PHONE.sub(PHONE_MASK, text)
    return FIN.sub(FIN_MASK, text)


class PiiFilter(logging.Filter):
    """A logging filter that masks personal data in every record's message, also when it is
    URL-encoded (`%2B994…`, `%40`), and keeps query values out of access-log lines (an
    `api_key=` or `user_id=` parameter shows as `api_key=…`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = _masked(record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            if record.name == "uvicorn.access" and len(args) >= 3 and isinstance(args[2], str):
                args = (*args[:2], without_query_values(args[2]), *args[3:])
            record.args = tuple(_masked(a) if isinstance(a, str) else a for a in args)
        return True


def _masked(text: str) -> str:
    if "%" in text or "+" in text:
        decoded = unquote_plus(text) if "%" in text else text
        if mask_pii(decoded) != decoded:
            return mask_pii(decoded)
    return mask_pii(text)


_QUERY_VALUE = re.compile(r"([?&][^=&#\s]*)=[^&#\s]*")


def without_query_values(path: str) -> str:
    """`/threads?user_id=u1&limit=5` → `/threads?user_id=…&limit=…`."""
    return _QUERY_VALUE.sub(r"\1=…", path)
