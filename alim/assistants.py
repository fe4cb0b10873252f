"""Per-partner assistant settings (like an Assistants API's assistant): display name, extra
instructions, model, escalation threshold, default language, default region and the datasets a
turn searches when its request names none. They apply to the partner's runs from the next turn
on and are recorded in each run's metadata."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from alim.db import Database, Row
from alim.errors import ConfigError, InvalidRequest
from alim.knowledge.store import BUNDLED
from alim.llm import allowed_choice, make_chat_model, parse_model_choice
from alim.migrations import MigratedStore, Migration
from alim.places import Gazetteer
from alim.settings import Settings
from alim.timeutil import now_iso

if TYPE_CHECKING:
    from alim.knowledge.datasets import PartnerKnowledge

CACHE_SECONDS = 5.0
# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
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
# Version 1: the datasets a turn searches by default (issue 13). dataset_ids is a JSON list,
# NULL for "all of the partner's datasets"; include_bundled is 0 or 1.
_V1 = [
    "ALTER TABLE alim_assistants ADD COLUMN dataset_ids TEXT",
    "ALTER TABLE alim_assistants ADD COLUMN include_bundled INTEGER NOT NULL DEFAULT 1",
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
    dataset_ids: tuple[str, ...] | None = None
    """The partner's datasets a turn searches when its request names none (None: all of them;
    a dataset deleted since is skipped)."""
    include_bundled: bool = True
    """Whether a turn searches the shared bundled base when its request does not say."""
    updated_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found = asdict(self)
        found["dataset_ids"] = list(self.dataset_ids) if self.dataset_ids is not None else None
        return found

    @classmethod
    def from_row(cls, row: Row) -> AssistantSettings:
        threshold = row["escalation_threshold"]
        return cls(
            display_name=row["display_name"],
            instructions=row["instructions"],
            model=row["model"],
            escalation_threshold=float(threshold) if threshold is not None else None,
            default_language=row["default_language"],
            default_region=row["default_region"],
            dataset_ids=tuple(json.loads(ids)) if (ids := row["dataset_ids"]) is not None else None,
            include_bundled=bool(row["include_bundled"]),
            updated_at=row["updated_at"],
        )


def validate(settings: Settings, assistant: AssistantSettings) -> None:
    """Refuse settings that would break the partner's runs (422 with a code)."""
    try:
        provider, model = parse_model_choice(assistant.model, settings)
        if not allowed_choice(assistant.model, settings):
            raise InvalidRequest(
                f"{assistant.model!r} is not among this server's models (ALIM_ALLOWED_MODELS)"
            )
        make_chat_model(provider, settings, model)
    except (InvalidRequest, ConfigError) as exc:
        raise InvalidRequest(
            f"unknown or unavailable model: {exc.message}", code="unknown_model"
        ) from None
    if assistant.default_region and Gazetteer.bundled().get(assistant.default_region) is None:
        raise InvalidRequest(f"unknown region {assistant.default_region!r}", code="unknown_region")


async def save(
    store: AssistantStore,
    settings: Settings,
    knowledge: PartnerKnowledge,
    partner: str,
    wanted: AssistantSettings,
) -> AssistantSettings:
    """Store a partner's settings (`PUT /assistant`, `alim assistant set`) once they are sure to
    work: default datasets of its own only (404 `dataset_not_found`; `bundled` among them is
    `include_bundled`), then a model and region this server has (422)."""
    if wanted.dataset_ids is not None:
        scope = await knowledge.scope(partner, wanted.dataset_ids, wanted.include_bundled)
        wanted = replace(
            wanted,
            dataset_ids=tuple(d for d in scope if d != BUNDLED),
            include_bundled=BUNDLED in scope,
        )
    validate(settings, wanted)
    return await store.put(partner, wanted)


class AssistantStore(MigratedStore):
    STORE: ClassVar[str] = "assistants"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0, _V1]

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: dict[str, tuple[float, AssistantSettings]] = {}

    async def get(self, partner: str) -> AssistantSettings:
        hit = self._cache.get(partner)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        row = await self.db.fetch_one(
            "SELECT display_name, instructions, model, escalation_threshold, default_language, "
            "default_region, dataset_ids, include_bundled, updated_at "
            "FROM alim_assistants WHERE partner = ?",
            (partner,),
        )
        found = AssistantSettings.from_row(row) if row else AssistantSettings()
        self._cache[partner] = (time.monotonic(), found)
        return found

    async def put(self, partner: str, assistant: AssistantSettings) -> AssistantSettings:
        stored = replace(assistant, updated_at=now_iso("seconds"))
        row = {
            "partner": partner,
            **asdict(stored),
            "dataset_ids": json.dumps(list(ids))
            if (ids := stored.dataset_ids) is not None
            else None,
            "include_bundled": 1 if stored.include_bundled else 0,
        }
        updates = ", ".join(f"{c} = excluded.{c}" for c in row if c != "partner")
        await self.db.insert(
            "alim_assistants", row, f"ON CONFLICT (partner) DO UPDATE SET {updates}"
        )
        self._cache.pop(partner, None)
        return stored
