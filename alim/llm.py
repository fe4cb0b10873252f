"""Chat-model factory and the fallback chain (e.g. groq → openai → offline).

Providers: `groq` (ChatGroq), `openai` (ChatOpenAI: OpenAI or any OpenAI-compatible server such
as vLLM, Ollama or llama.cpp), and `offline` (the retrieval-only composer, `alim.offline`).
Each hosted call has a timeout and bounded retries with exponential backoff and jitter (done by
the provider SDKs, which also honour `Retry-After`). When a provider still fails before it has
streamed anything, the next provider of the chain answers; if all fail, `ProviderUnavailable`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from pydantic import SecretStr

from alim.errors import AlimError, ConfigError, InvalidRequest, ProviderUnavailable
from alim.offline import OFFLINE_MODEL_NAME, OfflineChatModel
from alim.settings import ProviderName, Settings

log = logging.getLogger(__name__)
PROVIDERS: tuple[ProviderName, ...] = ("groq", "openai", "offline")


@dataclass(frozen=True)
class Provider:
    name: ProviderName
    model_name: str
    model: BaseChatModel


def make_chat_model(
    provider: ProviderName, settings: Settings, model: str | None = None
) -> Provider:
    """One provider's chat model, with the configured timeout and retries. `astream` streams;
    `ainvoke` makes one request for the whole answer unless a streaming callback (Studio's
    `messages` mode) asks for tokens. Not built with `streaming=True`: ChatGroq would then
    stream every call, `stream=False` or not."""
    if provider == "groq":
        from langchain_groq import ChatGroq

        if settings.groq_api_key is None:
            raise ConfigError("the groq provider needs ALIM_GROQ_API_KEY")
        name = model or settings.groq_model
        chat: BaseChatModel = ChatGroq(
            model=name,
            api_key=settings.groq_api_key,
            base_url=settings.groq_base_url,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            temperature=0.2,
        )
        return Provider("groq", name, chat)
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        name = model or settings.openai_model
        chat = ChatOpenAI(
            model=name,
            api_key=settings.openai_api_key or SecretStr("not-needed"),  # local servers ignore it
            base_url=settings.openai_base_url,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
            stream_usage=True,
            temperature=0.2,
        )
        return Provider("openai", name, chat)
    if provider == "offline":
        return Provider(
            "offline", OFFLINE_MODEL_NAME, OfflineChatModel(delay=settings.offline_delay)
        )
    raise InvalidRequest(f"unknown model provider {provider!r}")


def parse_model_choice(choice: str, settings: Settings) -> tuple[ProviderName, str | None]:
    """`""` → the configured primary; `"groq"`, `"openai:gpt-4o-mini"`, `"offline"` → as said."""
    if not choice:
        return settings.primary_provider, None
    provider, _, model = choice.partition(":")
    if provider not in PROVIDERS:
        raise InvalidRequest(
            f"unknown model {choice!r}: use one of {', '.join(PROVIDERS)} optionally with "
            "':<model name>'"
        )
    return provider, model or None


def allowed_choice(choice: str, settings: Settings) -> bool:
    """Whether partners may choose this model: a provider's configured default, `offline`, or
    one listed in ALIM_ALLOWED_MODELS (any other name would be one more client kept per name)."""
    provider, model = parse_model_choice(choice, settings)
    defaults = {"groq": settings.groq_model, "openai": settings.openai_model}
    if provider == "offline" or model is None or model == defaults.get(provider):
        return True
    return f"{provider}:{model}" in settings.allowed_models


MAX_CACHED_MODELS = 16
"""Chat-model clients kept per process (one per provider and model name)."""


class ModelChain:
    """The providers to try for one run, in order."""

    def __init__(self, providers: list[Provider]):
        if not providers:
            raise InvalidRequest("no chat model configured")
        self.providers = providers

    @classmethod
    def for_choice(cls, choice: str, settings: Settings, cache: dict[str, Provider]) -> ModelChain:
        provider, model = parse_model_choice(choice, settings)
        order: list[tuple[ProviderName, str | None]] = [(provider, model)]
        for fallback in settings.llm_fallbacks:
            if fallback != provider:
                order.append((fallback, None))
        providers = []
        for position, (name, model_name) in enumerate(order):
            key = f"{name}:{model_name or ''}"
            if key not in cache:
                if len(cache) >= MAX_CACHED_MODELS:
                    cache.pop(next(iter(cache)))  # the oldest; a bounded set either way
                try:
                    cache[key] = make_chat_model(name, settings, model_name)
                except ConfigError as exc:
                    if position == 0:
                        raise
                    log.warning("fallback provider %s skipped: %s", name, exc.message)
                    continue
            providers.append(cache[key])
        return cls(providers)

    @property
    def primary(self) -> Provider:
        return self.providers[0]

    async def astream(
        self, messages: list[BaseMessage], grounding: dict[str, Any]
    ) -> AsyncIterator[tuple[Provider, AIMessageChunk]]:
        """Stream from the first provider that works; fall back only before the first token."""
        failures: list[str] = []
        for provider in self.providers:
            started = False
            try:
                async for chunk in provider.model.astream(messages, **_kwargs(provider, grounding)):
                    started = True
                    yield provider, chunk
                return
            except AlimError:
                raise
            except Exception as exc:  # provider SDKs raise many types; each is a provider failure
                reason = _failed(provider, exc)
                if started:
                    raise ProviderUnavailable(f"the model stream broke off ({reason})") from exc
                failures.append(reason)
        raise ProviderUnavailable("every configured model failed: " + "; ".join(failures))

    async def ainvoke(
        self, messages: list[BaseMessage], grounding: dict[str, Any]
    ) -> tuple[Provider, AIMessage]:
        """The whole answer of the first provider that works (no token stream)."""
        failures: list[str] = []
        for provider in self.providers:
            try:
                # stream=False: one request even where a streaming callback is attached
                # (langchain's per-call opt-out).
                answer = await provider.model.ainvoke(
                    messages, stream=False, **_kwargs(provider, grounding)
                )
            except AlimError:
                raise
            except Exception as exc:  # provider SDKs raise many types; each is a provider failure
                failures.append(_failed(provider, exc))
                continue
            return provider, answer
        raise ProviderUnavailable("every configured model failed: " + "; ".join(failures))


def _kwargs(provider: Provider, grounding: dict[str, Any]) -> dict[str, Any]:
    """The offline model composes from the grounding; hosted models get it in the prompt."""
    return {"grounding": grounding} if provider.name == "offline" else {}


def _failed(provider: Provider, exc: Exception) -> str:
    reason = f"{provider.name}: {type(exc).__name__}"
    log.warning("chat model failed (%s)", reason)
    return reason
