"""Open the persisted knowledge index, building it only when the content or embedder changed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.knowledge.documents import content_hash, load_articles
from alim.knowledge.index import KnowledgeIndex, read_manifest
from alim.settings import Settings

log = logging.getLogger(__name__)


def ensure_index(
    settings: Settings,
    embeddings: Embeddings,
    *,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> KnowledgeIndex:
    """Load the index from disk, or build and persist it when missing or out of date.

    A stale index (other content or embedder) is rebuilt; a corrupt one raises `IndexCorrupt`
    with a rebuild hint rather than answering from damaged data.
    """
    articles = load_articles(settings.kb_dir)
    wanted = content_hash(articles)
    directory = settings.resolved_index_dir
    if not rebuild and (directory / "manifest.json").exists():
        manifest = read_manifest(directory)
        if manifest.get("content_hash") == wanted and manifest.get("embedder") == embedder_name(
            embeddings
        ):
            return KnowledgeIndex.load(directory, embeddings, expected_hash=wanted)
        log.info("knowledge index at %s is out of date; rebuilding", directory)
    log.info("building the knowledge index from %d articles", len(articles))
    index = KnowledgeIndex.build(articles, embeddings, progress=progress)
    index.save(directory)
    return index
