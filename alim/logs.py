"""Structured JSON logs with the request's context, never secrets, personal data masked.

`configure_logging(settings)` installs one JSON handler on the root logger. Context fields
(`request_id`, `partner`, `thread_id`, `run_id`) come from context variables set by the API
middleware and the engine. Message text is never logged at INFO; API keys are never logged.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from alim.privacy import PiiFilter

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
partner_var: ContextVar[str | None] = ContextVar("partner", default=None)
thread_var: ContextVar[str | None] = ContextVar("thread_id", default=None)
run_var: ContextVar[str | None] = ContextVar("run_id", default=None)
_CONTEXT = {
    "request_id": request_id_var,
    "partner": partner_var,
    "thread_id": thread_var,
    "run_id": run_var,
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, var in _CONTEXT.items():
            value = var.get()
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_format: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    handler.addFilter(PiiFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Third-party clients log request URLs at INFO; keep them at WARNING.
    for name in ("httpx", "httpcore", "openai", "groq"):
        logging.getLogger(name).setLevel(logging.WARNING)
