"""Test doubles for what cannot run fast in unit tests (the embedding model)."""

from alim.embeddings import HashingEmbeddings

__all__ = ["HashingEmbeddings"]
