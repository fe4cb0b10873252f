"""Test doubles that stand in for what cannot run fast in unit tests (the embedding model)."""

from __future__ import annotations

import hashlib

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.text import stems


class HashingEmbeddings(Embeddings):
    """Bag of word stems hashed into a small vector: lexical similarity, deterministic, instant."""

    name = "test-hashing"

    def __init__(self, dim: int = 128):
        self.dim = dim
        self.calls = 0

    def _vector(self, text: str) -> list[float]:
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
