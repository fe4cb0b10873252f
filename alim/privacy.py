"""Masking of personal data before text leaves the process (hosted LLMs) and in logs.

Masked: Azerbaijani phone numbers (+994 / 994 / 0 followed by an operator or area code and seven
digits, with spaces, dashes, dots or brackets), FIN codes (the 7-character personal identifier
on Azerbaijani ID cards: capital Latin letters and digits with at least one of each), and
e-mail addresses. The stored thread keeps what the user wrote.
"""

from __future__ import annotations

import logging
import re

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
    """A logging filter that masks personal data in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_pii(record.msg)
        if record.args:
            record.args = tuple(
                mask_pii(a) if isinstance(a, str) else a
                for a in (record.args if isinstance(record.args, tuple) else (record.args,))
            )
        return True
