"""Partner API keys: stored hashed (SHA-256 of a 256-bit random key), compared in constant time,
each with scopes and optional per-key rate limits.

Scopes: `chat` (run turns, read own threads), `agent` (answer escalations), `admin` (knowledge,
assistant settings). Keys come from the database (`alim keys create NAME`) or, for simple
deployments, from `ALIM_API_KEYS` (`["name:key:scope+scope"]`). In development the seed's key
`dev-api-key-change-in-production` is the partner `dev` with every scope; production refuses it.
A partner may hold several keys (rotation); its threads belong to the partner name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import ClassVar

from typing_extensions import TypedDict

from alim.db import Database, Row
from alim.errors import ConfigError, InvalidRequest
from alim.migrations import MigratedStore, Migration
from alim.settings import DEV_API_KEY, Settings
from alim.timeutil import now_iso

SCOPES = ("chat", "agent", "admin")
DEV_PARTNER = "dev"
KEY_PREFIX = "alim_"

# Version 0: the schema from before versions existed (do not edit; append migrations).
_V0 = [
    """CREATE TABLE IF NOT EXISTS alim_api_keys (
        id TEXT PRIMARY KEY,
        partner TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scopes TEXT NOT NULL,
        rate_limit_per_minute INTEGER,
        max_streams INTEGER,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
]


class ApiKeyInfo(TypedDict):
    """A stored key as listed: everything but its hash (the key itself is never stored)."""

    id: str
    partner: str
    prefix: str
    scopes: str
    """Comma-separated, sorted."""
    rate_limit_per_minute: int | None
    max_streams: int | None
    created_at: str
    revoked_at: str | None


def _key_info(row: Row) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row["id"],
        partner=row["partner"],
        prefix=row["prefix"],
        scopes=row["scopes"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
        max_streams=row["max_streams"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


@dataclass(frozen=True)
class Partner:
    """The authenticated caller."""

    name: str
    scopes: frozenset[str]
    key_id: str
    rate_limit_per_minute: int | None = None
    max_streams: int | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(scopes: list[str] | str) -> frozenset[str]:
    items = scopes.replace("+", ",").split(",") if isinstance(scopes, str) else scopes
    chosen = frozenset(s.strip() for s in items if s.strip()) or frozenset({"chat"})
    unknown = chosen - set(SCOPES)
    if unknown:
        raise InvalidRequest(f"unknown scope(s): {', '.join(sorted(unknown))}")
    return chosen


def _static_keys(settings: Settings) -> dict[str, Partner]:
    out: dict[str, Partner] = {}
    for raw in settings.api_keys:
        name, _, rest = raw.get_secret_value().partition(":")
        key, _, scopes = rest.partition(":")
        if not name or not key:
            raise ConfigError("ALIM_API_KEYS entries look like 'name:key[:scope+scope]'")
        out[hash_key(key)] = Partner(name, parse_scopes(scopes or "chat"), f"env:{name}")
    return out


class KeyStore(MigratedStore):
    STORE: ClassVar[str] = "keys"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0]

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings
        self._static = _static_keys(settings) if settings else {}

    async def create(
        self,
        partner: str,
        scopes: list[str] | str = "chat",
        *,
        rate_limit_per_minute: int | None = None,
        max_streams: int | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """A new key; the plain key is returned once and never stored."""
        if not partner.strip():
            raise InvalidRequest("partner name is empty")
        chosen = parse_scopes(scopes)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        info = ApiKeyInfo(
            id=uuid.uuid4().hex[:12],
            partner=partner.strip(),
            prefix=key[:10],
            scopes=",".join(sorted(chosen)),
            rate_limit_per_minute=rate_limit_per_minute,
            max_streams=max_streams,
            created_at=now_iso("seconds"),
            revoked_at=None,
        )
        await self.db.insert(
            "alim_api_keys",
            [
                ("id", info["id"]),
                ("partner", info["partner"]),
                ("key_hash", hash_key(key)),
                ("prefix", info["prefix"]),
                ("scopes", info["scopes"]),
                ("rate_limit_per_minute", info["rate_limit_per_minute"]),
                ("max_streams", info["max_streams"]),
                ("created_at", info["created_at"]),
            ],
        )
        return key, info

    async def list(self) -> list[ApiKeyInfo]:
        rows = await self.db.fetch_all(
            "SELECT id, partner, prefix, scopes, rate_limit_per_minute, max_streams, created_at, "
            "revoked_at FROM alim_api_keys ORDER BY created_at, id"
        )
        return [_key_info(r) for r in rows]

    async def revoke(self, key_id: str) -> bool:
        row = await self.db.fetch_one(
            "SELECT id FROM alim_api_keys WHERE id = ? AND revoked_at IS NULL", (key_id,)
        )
        if row is None:
            return False
        await self.db.run(
            "UPDATE alim_api_keys SET revoked_at = ? WHERE id = ?",
            (now_iso("seconds"), key_id),
        )
        return True

    async def active_count(self) -> int:
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM alim_api_keys WHERE revoked_at IS NULL"
        )
        return (int(row["n"]) if row else 0) + len(self._static)

    async def authenticate(self, key: str | None) -> Partner | None:
        """The partner owning `key`, or None. Never logs or stores the key."""
        if not key:
            return None
        digest = hash_key(key)
        if self.settings is not None and self.settings.env != "production":
            if hmac.compare_digest(digest, hash_key(DEV_API_KEY)):
                return Partner(DEV_PARTNER, frozenset(SCOPES), "dev")
        for known, partner in self._static.items():
            if hmac.compare_digest(known, digest):
                return partner
        row = await self.db.fetch_one(
            "SELECT id, partner, key_hash, scopes, rate_limit_per_minute, max_streams "
            "FROM alim_api_keys WHERE key_hash = ? AND revoked_at IS NULL",
            (digest,),
        )
        if row is None or not hmac.compare_digest(row["key_hash"], digest):
            return None
        return Partner(
            row["partner"],
            parse_scopes(row["scopes"]),
            row["id"],
            row["rate_limit_per_minute"],
            row["max_streams"],
        )


async def check_production_keys(settings: Settings, store: KeyStore) -> None:
    """Refuse to serve in production with the dev key configured or with no key at all."""
    if settings.env != "production":
        return
    if hash_key(DEV_API_KEY) in store._static:
        raise ConfigError("the development API key is configured in production; remove it")
    if await store.active_count() == 0:
        raise ConfigError(
            "no API key is configured for production: create one with `alim keys create NAME`"
        )
