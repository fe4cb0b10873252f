"""The words every layer shares, defined once: routes, languages, search types and their
defaults, escalation reasons. Types are `Literal`s so that mypy catches a misspelt value."""

from __future__ import annotations

from typing import Final, Literal, get_args

Route = Literal["agronomy", "weather", "smalltalk", "off_topic", "human"]
"""agronomy: farming questions; weather: forecasts for a place; smalltalk: greetings, thanks,
who/what are you; off_topic: not farming; human: the user asks for a person."""
ROUTES: Final[tuple[Route, ...]] = get_args(Route)
GROUNDED_ROUTES: Final[frozenset[Route]] = frozenset({"agronomy", "weather"})
"""Routes whose answers rest on knowledge passages."""

Language = Literal["az", "en", "ru"]
LANGUAGES: Final[tuple[Language, ...]] = get_args(Language)

EscalationReason = Literal["low_confidence", "user_requested"]

SearchType = Literal["similarity", "hybrid", "mmr"]
SEARCH_TYPES: Final[tuple[SearchType, ...]] = get_args(SearchType)
DEFAULT_SEARCH_TYPE: Final[SearchType] = "hybrid"
DEFAULT_K: Final = 4
DEFAULT_FETCH_K: Final = 20
DEFAULT_LAMBDA_MULT: Final = 0.5
