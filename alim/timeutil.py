"""Timestamps as ALİM stores and sends them: UTC, ISO 8601, milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso(timespec: str = "milliseconds") -> str:
    return datetime.now(UTC).isoformat(timespec=timespec)


def iso(t: datetime, timespec: str = "milliseconds") -> str:
    return t.astimezone(UTC).isoformat(timespec=timespec)
