"""Test doubles for what cannot run fast in unit tests (the embedding model)."""

from alim.embeddings import HashingEmbeddings

__all__ = ["CountingEmbeddings", "HashingEmbeddings"]


class CountingEmbeddings(HashingEmbeddings):
    """The hashing embedder, recording every text it embeds, as a document or as a query."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_query(text)
