"""The knowledge base at run time: bundled articles + articles ingested by partners, and the
persisted index over both.

- `ensure_index` loads the index from disk, or builds it when missing or out of date (other
  content or embedder). A corrupt index raises `IndexCorrupt` with a rebuild hint.
- `KnowledgeService.ingest` adds an article incrementally: only its chunks are embedded, the
  article file and then the index are written atomically (temp + rename), and the new index
  replaces the old one in memory in one assignment, so queries keep working during an ingest
  and a crash mid-write leaves either the old or the new state (a half-written article is
  detected by the content hash on the next start and the index rebuilt).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.errors import Conflict, InvalidRequest, NotFound
from alim.knowledge.catalog import Catalog
from alim.knowledge.checks import refuse_non_article, strip_markup
from alim.knowledge.documents import (
    Article,
    content_hash,
    front_matter,
    has_breaks,
    load_articles,
    parse_article,
    strip_title_heading,
)
from alim.knowledge.index import FORMAT_VERSION, KnowledgeIndex, read_manifest
from alim.settings import Settings
from alim.vocab import LANGUAGES

log = logging.getLogger(__name__)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def ingested_dir(settings: Settings) -> Path:
    return settings.data_dir / "knowledge"


def all_articles(settings: Settings) -> tuple[list[Article], list[Article]]:
    """(bundled, ingested) articles."""
    bundled = load_articles(settings.kb_dir)
    extra_dir = ingested_dir(settings)
    ingested = load_articles(extra_dir, skip_bad=True) if extra_dir.is_dir() else []
    bundled_ids = {a.id for a in bundled}
    for a in ingested:
        if a.id in bundled_ids:
            log.error("skipping ingested article %s: it reuses a bundled id", a.source)
    return bundled, [a for a in ingested if a.id not in bundled_ids]


def ensure_index(
    settings: Settings,
    embeddings: Embeddings,
    *,
    rebuild: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> KnowledgeIndex:
    """Load the index from disk, or build and persist it when missing or out of date."""
    bundled, ingested = all_articles(settings)
    articles = bundled + ingested
    wanted = content_hash(articles)
    directory = settings.resolved_index_dir
    if not rebuild and (directory / "manifest.json").exists():
        manifest = read_manifest(directory)
        if (
            manifest.get("content_hash") == wanted
            and manifest.get("embedder") == embedder_name(embeddings)
            and manifest.get("format") == FORMAT_VERSION  # an upgrade's new format rebuilds
        ):
            return KnowledgeIndex.load(directory, embeddings, expected_hash=wanted)
        log.info("knowledge index at %s is out of date; rebuilding", directory)
    log.info("building the knowledge index from %d articles", len(articles))
    index = KnowledgeIndex.build(articles, embeddings, progress=progress)
    index.save(directory)
    return index


def article_markdown(a: Article) -> str:
    """The stored form of an article: JSON-quoted front matter, then the text."""
    fields = {
        "id": a.id,
        "group": a.group_id,
        "title": a.title,
        "language": a.language,
        "topic": a.topic,
        "tags": ", ".join(t.replace(",", " ") for t in a.tags),
    }
    return f"{front_matter(fields)}\n{a.content.strip()}\n"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def validated_article(
    *, title: str, content: str, language: str, tags: list[str] | None = None, topic: str = ""
) -> Article:
    """An article with a new id from a partner's fields; InvalidRequest (422, stable codes)
    for what cannot be an article (markup is stripped first)."""
    for name, value in [("title", title), ("topic", topic), *(("tags", t) for t in tags or ())]:
        if has_breaks(value):
            raise InvalidRequest(
                f"{name} holds a control or line-break character", code="invalid_field"
            )
    if language not in LANGUAGES:
        raise InvalidRequest("language must be az, en or ru", code="validation_error")
    title = " ".join(strip_markup(title).split())
    content = strip_markup(content)
    if not title or not content.strip():
        raise InvalidRequest("title and content are required", code="empty_document")
    # A one-line document is its own title and text.
    content = strip_title_heading(content.strip(), title) or title
    refuse_non_article(content)
    article_id = f"kb-{_SAFE.sub('-', title.lower())[:40].strip('-')}-{uuid.uuid4().hex[:8]}"
    return parse_article(
        article_markdown(
            Article(
                id=article_id,
                title=title,
                language=language,
                content=content,
                topic=topic,
                tags=tuple(tags or ()),
            )
        ),
        source=f"{article_id}.md",
    )


class KnowledgeService:
    def __init__(self, settings: Settings, embeddings: Embeddings):
        self.settings = settings
        self.embeddings = embeddings
        self._index: KnowledgeIndex | None = None
        self._write_lock = threading.RLock()  # ingest may load the index first
        self.catalog = Catalog(lambda: self.index, embeddings)
        """Partner datasets' indexes, kept in step with the store (`alim.knowledge.datasets`)."""

    @property
    def index(self) -> KnowledgeIndex:
        """The bundled base (with articles ingested as files before datasets existed)."""
        return self.load()

    def index_for(self, scope: Sequence[str] | None) -> KnowledgeIndex:
        """What a turn searches: the datasets of `scope` (`BUNDLED` is the bundled base);
        None: the bundled base alone (Studio, `alim index search`, evaluation)."""
        return self.index if scope is None else self.catalog.index_for(scope)

    def load(self, progress: Callable[[int, int], None] | None = None) -> KnowledgeIndex:
        """The index, loaded (or built, reporting `progress(done, total)`) on first use."""
        if self._index is None:
            with self._write_lock:
                if self._index is None:
                    self._index = ensure_index(self.settings, self.embeddings, progress=progress)
        return self._index

    def articles(self) -> list[tuple[Article, str]]:
        bundled, ingested = all_articles(self.settings)
        return [(a, "bundled") for a in bundled] + [(a, "ingested") for a in ingested]

    def get(self, article_id: str) -> tuple[Article, str]:
        for article, source in self.articles():
            if article.id == article_id:
                return article, source
        raise NotFound("article not found", code="article_not_found")

    def ingest(
        self,
        *,
        title: str,
        content: str,
        language: str,
        tags: list[str] | None = None,
        topic: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> Article:
        """Add one article; returns it with its new id. Nothing is written unless it is valid."""
        article = validated_article(
            title=title, content=content, language=language, tags=tags, topic=topic
        )
        with self._write_lock:
            current = self.index
            path = ingested_dir(self.settings) / f"{article.id}.md"
            _write_atomically(path, article_markdown(article))
            bundled, ingested = all_articles(self.settings)
            updated = current.with_articles(
                [article], content_hash=content_hash(bundled + ingested), progress=progress
            )
            updated.save(self.settings.resolved_index_dir)
            self._index = updated
        log.info("ingested article %s (%d chunks in the index)", article.id, len(updated.chunks))
        return article

    def delete(self, article_id: str) -> None:
        _, source = self.get(article_id)
        if source == "bundled":
            raise Conflict(
                "bundled articles are part of the release and cannot be deleted",
                code="bundled_article",
            )
        with self._write_lock:
            current = self.index
            (ingested_dir(self.settings) / f"{article_id}.md").unlink()
            bundled, ingested = all_articles(self.settings)
            updated = current.without_article(
                article_id, content_hash=content_hash(bundled + ingested)
            )
            updated.save(self.settings.resolved_index_dir)
            self._index = updated
