"""The services the nodes use, built lazily: nothing loads before the first run needs it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from langchain_core.embeddings import Embeddings

    from alim.knowledge.index import KnowledgeIndex
    from alim.knowledge.service import KnowledgeService
    from alim.llm import Provider
    from alim.places import Gazetteer
    from alim.routing import SemanticRouter
    from alim.settings import Settings
    from tools.weather import WeatherClient


class GraphDeps:
    """Lazily created services shared by all runs of a compiled graph.

    `settings=None` reads the process settings on first use (LangGraph Studio imports the graph
    module; reading `.env` then would be I/O at import time)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        _embeddings: Embeddings | None = None,
        _router: SemanticRouter | None = None,
    ):
        self._settings = settings
        self._embeddings = _embeddings
        self._knowledge: KnowledgeService | None = None
        self._router: SemanticRouter | None = _router
        self._weather: WeatherClient | None = None
        self._gazetteer: Gazetteer | None = None
        self.models: dict[str, Provider] = {}
        self._lock = threading.RLock()

    def sharing(self, settings: Settings) -> GraphDeps:
        """Services under other settings that reuse this one's loaded embedder, knowledge,
        router and gazetteer (an evaluation run forces the offline model, say)."""
        other = GraphDeps(settings, _embeddings=self.embeddings())
        other._knowledge = self.knowledge()
        other._router = self._router
        other._gazetteer = self._gazetteer
        return other

    def config(self) -> Settings:
        """The settings, read on first use. Nodes call this method rather than reading an
        attribute: LangGraph inspects node closures' attributes when it compiles the graph."""
        if self._settings is None:
            from alim.settings import get_settings

            self._settings = get_settings()
        return self._settings

    @property
    def settings(self) -> Settings:
        return self.config()

    def embeddings(self) -> Embeddings:
        with self._lock:
            if self._embeddings is None:
                from alim.embeddings import make_embeddings

                self._embeddings = make_embeddings(self.settings)
            return self._embeddings

    def knowledge(self) -> KnowledgeService:
        with self._lock:
            if self._knowledge is None:
                from alim.knowledge.service import KnowledgeService

                self._knowledge = KnowledgeService(self.settings, self.embeddings())
            return self._knowledge

    def index(self, scope: Sequence[str] | None = None) -> KnowledgeIndex:
        """The index a turn searches: the datasets of `scope` (None: the bundled base), each
        replaced as a whole when an article is ingested."""
        return self.knowledge().index_for(scope)

    def router(self) -> SemanticRouter:
        with self._lock:
            if self._router is None:
                from alim.routing import SemanticRouter

                self._router = SemanticRouter(
                    self.embeddings(), cache_dir=self.settings.resolved_index_dir.parent / "cache"
                )
            return self._router

    def weather(self) -> WeatherClient:
        with self._lock:
            if self._weather is None:
                from tools.weather import WeatherClient

                s = self.settings
                self._weather = WeatherClient(
                    s.weather_base_url, timeout=s.weather_timeout, cache_ttl=s.weather_cache_ttl
                )
            return self._weather

    def gazetteer(self) -> Gazetteer:
        with self._lock:
            if self._gazetteer is None:
                from alim.places import Gazetteer

                self._gazetteer = Gazetteer.bundled()
            return self._gazetteer

    def warm_up(self) -> None:
        """Load the index, the router vectors and the gazetteer now (server start-up)."""
        self.index()
        self.router()._exemplar_matrix()
        self.gazetteer()
