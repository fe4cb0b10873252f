"""Per-partner assistant settings (like an Assistants API's assistant): display name, extra
instructions, model, escalation threshold, default language and default region. They apply to
the partner's runs from the next turn on and are recorded in each run's metadata."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from alim.db import Database
from alim.errors import ConfigError, InvalidRequest
from alim.llm import make_chat_model, parse_model_choice
from alim.places import Gazetteer
from alim.settings import Settings

CACHE_SECONDS = 5.0
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS alim_assistants (
        partner TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        instructions TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        escalation_threshold REAL,
        default_language TEXT NOT NULL DEFAULT 'auto',
        default_region TEXT,
        updated_at TEXT NOT NULL
    )""",
]


@dataclass(frozen=True)
class AssistantSettings:
    display_name: str = "ALİM"
    instructions: str = ""
    model: str = ""
    """"" = the server default; else groq | openai | offline, optionally ':<model name>'."""
    escalation_threshold: float | None = None
    default_language: str = "auto"
    default_region: str | None = None
    updated_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate(settings: Settings, assistant: AssistantSettings) -> None:
    """Refuse settings that would break the partner's runs (422 with a code)."""
    try:
        provider, model = parse_model_choice(assistant.model, settings)
        make_chat_model(provider, settings, model)
    except (InvalidRequest, ConfigError) as exc:
        raise InvalidRequest(
            f"unknown or unavailable model: {exc.message}", code="unknown_model"
        ) from None
    if assistant.default_region and Gazetteer.bundled().get(assistant.default_region) is None:
        raise InvalidRequest(f"unknown region {assistant.default_region!r}", code="unknown_region")


class AssistantStore:
    def __init__(self, db: Database):
        self.db = db
        self._cache: dict[str, tuple[float, AssistantSettings]] = {}

    async def setup(self) -> None:
        for statement in _SCHEMA:
            await self.db.run(statement)

    async def get(self, partner: str) -> AssistantSettings:
        hit = self._cache.get(partner)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        row = await self.db.run(
            "SELECT display_name, instructions, model, escalation_threshold, default_language, "
            "default_region, updated_at FROM alim_assistants WHERE partner = ?",
            (partner,),
            "one",
        )
        found = AssistantSettings(**row) if row else AssistantSettings()
        self._cache[partner] = (time.monotonic(), found)
        return found

    async def put(self, partner: str, assistant: AssistantSettings) -> AssistantSettings:
        stored = replace(assistant, updated_at=datetime.now(UTC).isoformat(timespec="seconds"))
        await self.db.run(
            "INSERT INTO alim_assistants (partner, display_name, instructions, model, "
            "escalation_threshold, default_language, default_region, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (partner) DO UPDATE SET "
            "display_name = excluded.display_name, instructions = excluded.instructions, "
            "model = excluded.model, escalation_threshold = excluded.escalation_threshold, "
            "default_language = excluded.default_language, "
            "default_region = excluded.default_region, updated_at = excluded.updated_at",
            (
                partner,
                stored.display_name,
                stored.instructions,
                stored.model,
                stored.escalation_threshold,
                stored.default_language,
                stored.default_region,
                stored.updated_at,
            ),
        )
        self._cache.pop(partner, None)
        return stored
