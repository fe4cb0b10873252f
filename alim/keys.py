"""Partner API keys: stored hashed (SHA-256 of a 256-bit random key), compared in constant time,
each with scopes and optional per-key rate limits.

Scopes: `chat` (run turns, read own threads), `agent` (answer escalations), `admin` (knowledge,
assistant settings), `public` (a publishable key for the website widget: chat and the visitor's
own threads only, from an allowlist of origins; its end users are identified by a signed visitor
token or a `user_hash` made with the key's identity secret, see `alim.visitors`).

Keys come from the database (`alim keys create NAME`) or, for simple
deployments, from `ALIM_API_KEYS` (`["name:key:scope+scope"]`). In development the seed's key
`dev-api-key-change-in-production` is the partner `dev` with every scope; production refuses it.
A partner may hold several keys (rotation); its threads belong to the partner name.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import ClassVar
from urllib.parse import urlsplit

from typing_extensions import TypedDict

from alim.db import Database, Row
from alim.errors import ConfigError, InvalidRequest
from alim.migrations import MigratedStore, Migration
from alim.settings import DEV_API_KEY, DEV_VISITOR_SECRET, Settings
from alim.timeutil import now_iso

SCOPES = ("chat", "agent", "admin", "public")
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


# Version 1: publishable keys carry their allowed origins (space-separated) and the identity
# secret partners sign their users' ids with (HMAC needs the secret itself, so it is stored).
_V1 = [
    "ALTER TABLE alim_api_keys ADD COLUMN origins TEXT",
    "ALTER TABLE alim_api_keys ADD COLUMN identity_secret TEXT",
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
    origins: str
    """Space-separated origins a publishable key may be used from ('' for other keys)."""


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
        origins=row["origins"] or "",
    )


@dataclass(frozen=True)
class Partner:
    """The authenticated caller."""

    name: str
    scopes: frozenset[str]
    key_id: str
    rate_limit_per_minute: int | None = None
    max_streams: int | None = None
    origins: frozenset[str] = frozenset()
    """A publishable key's allowed origins."""
    identity_secret: str | None = field(default=None, repr=False)
    """A publishable key's secret for `user_hash` (never logged)."""

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def public(self) -> bool:
        return "public" in self.scopes


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(scopes: list[str] | str) -> frozenset[str]:
    items = scopes.replace("+", ",").split(",") if isinstance(scopes, str) else scopes
    chosen = frozenset(s.strip() for s in items if s.strip()) or frozenset({"chat"})
    unknown = chosen - set(SCOPES)
    if unknown:
        raise InvalidRequest(f"unknown scope(s): {', '.join(sorted(unknown))}")
    if "public" in chosen and len(chosen) > 1:
        raise InvalidRequest("the 'public' scope cannot be combined with others")
    return chosen


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` as browsers send it in `Origin` (lower case, no default port)."""
    parts = urlsplit(origin.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise InvalidRequest(
            f"an origin looks like https://shop.example or http://127.0.0.1:8080, not {origin!r}",
            code="invalid_origin",
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidRequest(f"bad port in origin {origin!r}", code="invalid_origin") from exc
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def _static_keys(settings: Settings) -> dict[str, Partner]:
    out: dict[str, Partner] = {}
    for raw in settings.api_keys:
        name, _, rest = raw.get_secret_value().partition(":")
        key, _, scopes = rest.partition(":")
        if not name or not key:
            raise ConfigError("ALIM_API_KEYS entries look like 'name:key[:scope+scope]'")
        chosen = parse_scopes(scopes or "chat")
        if "public" in chosen:
            raise ConfigError(
                "publishable keys need origins: `alim keys create NAME --scope public`"
            )
        out[hash_key(key)] = Partner(name, chosen, f"env:{name}")
    return out


class KeyStore(MigratedStore):
    STORE: ClassVar[str] = "keys"
    MIGRATIONS: ClassVar[list[Migration]] = [_V0, _V1]
    ORIGINS_TTL: ClassVar[float] = 5.0
    """Seconds the union of publishable keys' origins (for CORS preflights) is cached."""

    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        self.settings = settings
        self._static = _static_keys(settings) if settings else {}
        self._origins: tuple[float, frozenset[str]] | None = None

    async def create(
        self,
        partner: str,
        scopes: list[str] | str = "chat",
        *,
        rate_limit_per_minute: int | None = None,
        max_streams: int | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """A new key; the plain key is returned once and never stored."""
        chosen = parse_scopes(scopes)
        if "public" in chosen:
            raise InvalidRequest("create publishable keys with create_public()")
        return await self._insert(partner, chosen, rate_limit_per_minute, max_streams)

    async def create_public(
        self,
        partner: str,
        origins: list[str],
        *,
        rate_limit_per_minute: int | None = None,
        max_streams: int | None = None,
    ) -> tuple[str, str, ApiKeyInfo]:
        """A publishable key for the widget, usable from `origins` only: (key, identity secret,
        info). The identity secret signs partners' user ids (`user_hash`); it is shown once."""
        allowed = sorted({normalize_origin(o) for o in origins})
        if not allowed:
            raise InvalidRequest(
                "a publishable key needs at least one --origin", code="invalid_origin"
            )
        secret = "alim_ids_" + secrets.token_urlsafe(32)
        key, info = await self._insert(
            partner,
            frozenset({"public"}),
            rate_limit_per_minute,
            max_streams,
            origins=" ".join(allowed),
            identity_secret=secret,
        )
        self._origins = None
        return key, secret, info

    async def _insert(
        self,
        partner: str,
        chosen: frozenset[str],
        rate_limit_per_minute: int | None,
        max_streams: int | None,
        *,
        origins: str = "",
        identity_secret: str | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        if not partner.strip():
            raise InvalidRequest("partner name is empty")
        key = (KEY_PREFIX + "pk_" if "public" in chosen else KEY_PREFIX) + secrets.token_urlsafe(32)
        info = ApiKeyInfo(
            id=uuid.uuid4().hex[:12],
            partner=partner.strip(),
            prefix=key[:10],
            scopes=",".join(sorted(chosen)),
            rate_limit_per_minute=rate_limit_per_minute,
            max_streams=max_streams,
            created_at=now_iso("seconds"),
            revoked_at=None,
            origins=origins,
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
                ("origins", origins or None),
                ("identity_secret", identity_secret),
            ],
        )
        return key, info

    async def list(self) -> list[ApiKeyInfo]:
        rows = await self.db.fetch_all(
            "SELECT id, partner, prefix, scopes, rate_limit_per_minute, max_streams, created_at, "
            "revoked_at, origins FROM alim_api_keys ORDER BY created_at, id"
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
        self._origins = None
        return True

    async def public_origins(self, now: float) -> frozenset[str]:
        """Every origin some active publishable key allows (what CORS preflights may be
        answered for), cached ORIGINS_TTL seconds."""
        if self._origins is not None and now - self._origins[0] < self.ORIGINS_TTL:
            return self._origins[1]
        rows = await self.db.fetch_all(
            "SELECT origins FROM alim_api_keys WHERE revoked_at IS NULL AND origins IS NOT NULL"
        )
        found = frozenset(o for r in rows for o in (r["origins"] or "").split())
        self._origins = (now, found)
        return found

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
                return Partner(DEV_PARTNER, frozenset(SCOPES) - {"public"}, "dev")
        for known, partner in self._static.items():
            if hmac.compare_digest(known, digest):
                return partner
        row = await self.db.fetch_one(
            "SELECT id, partner, key_hash, scopes, rate_limit_per_minute, max_streams, origins, "
            "identity_secret FROM alim_api_keys WHERE key_hash = ? AND revoked_at IS NULL",
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
            frozenset((row["origins"] or "").split()),
            row["identity_secret"],
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
    if (
        settings.visitor_secret.get_secret_value() == DEV_VISITOR_SECRET
        and await store.public_origins(0.0)
    ):
        raise ConfigError(
            "publishable keys exist but ALIM_VISITOR_SECRET is the development default; set it"
        )
