"""The bundled agronomy knowledge base: articles, chunking, the persisted hybrid index."""
