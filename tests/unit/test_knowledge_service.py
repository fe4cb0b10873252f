"""The knowledge base on disk (alim/knowledge/service.py, index.py): the saved index is always a
consistent manifest/vectors/chunks set, leftovers of an interrupted save or article write do not
break loading, and ingest/delete change the index incrementally (fixture corpus, hashing
embedder)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import pytest

from alim.knowledge.documents import content_hash, load_articles
from alim.knowledge.index import Chunk, KnowledgeIndex, SearchOptions, chunk_sentences
from alim.knowledge.service import KnowledgeService, all_articles, ensure_index, ingested_dir
from alim.settings import Settings
from tests.conftest import FIXTURE_KB, make_settings
from tests.support.fakes import CountingEmbeddings, HashingEmbeddings

FIXTURE_IDS = {"drought.az", "drought.en", "frost.en", "wheat.ru"}
SAFFRON_TITLE = "Zəfəran soğanlarının əkilməsi"
SAFFRON_TEXT = (
    "Zəfəran soğanlarını avqustun sonunda, 10 sm dərinlikdə, yüngül və quru torpağa əkin. "
    "Zəfəran payızda çiçəkləyir; çiçəkləri səhər tezdən yığın."
)
SAFFRON_QUESTION = "Zəfəran soğanlarını nə vaxt əkim?"
DEADLOCK_WAIT = 10.0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


def assert_consistent(directory: Path) -> dict[str, Any]:
    """The directory holds exactly a manifest, vectors and chunks that agree with each other."""
    assert sorted(p.name for p in directory.iterdir()) == [
        "chunks.json",
        "manifest.json",
        "sentences.npy",
        "vectors.faiss",
    ]
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    chunks = json.loads((directory / "chunks.json").read_text(encoding="utf-8"))
    vectors = faiss.read_index(str(directory / "vectors.faiss"))
    assert manifest["chunks"] == len(chunks) == vectors.ntotal
    sentence_vectors = np.load(directory / "sentences.npy", allow_pickle=False)
    assert manifest["sentences"] == sum(len(chunk_sentences(Chunk(**c))) for c in chunks)
    assert sentence_vectors.shape == (manifest["sentences"], vectors.d)
    assert manifest["dimension"] == vectors.d
    assert manifest["articles"] == len({c["article_id"] for c in chunks})
    return manifest  # type: ignore[no-any-return]


def leftovers(parent: Path) -> list[str]:
    """Temporary names an index save uses next to the index directory."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def top_article(index: KnowledgeIndex, question: str) -> str:
    return index.search(question, SearchOptions(k=1))[0].chunk.article_id


# ---------------------------------------------------------------------------------- saving
def test_save_writes_a_consistent_index_and_cleans_up(tmp_path: Path) -> None:
    articles = load_articles(FIXTURE_KB)
    index = KnowledgeIndex.build(articles, HashingEmbeddings())
    directory = tmp_path / "index"

    index.save(directory)

    manifest = assert_consistent(directory)
    assert manifest["content_hash"] == content_hash(articles)
    assert manifest["embedder"] == "hashing-stems"
    assert manifest["articles"] == len(FIXTURE_IDS)
    assert leftovers(tmp_path) == []


def test_saving_over_an_index_replaces_it_whole(tmp_path: Path) -> None:
    embeddings = HashingEmbeddings()
    articles = load_articles(FIXTURE_KB)
    directory = tmp_path / "index"
    KnowledgeIndex.build(articles, embeddings).save(directory)

    smaller = KnowledgeIndex.build(articles[:1], embeddings)
    smaller.save(directory)

    manifest = assert_consistent(directory)
    assert manifest["content_hash"] == content_hash(articles[:1])
    assert manifest["articles"] == 1
    assert leftovers(tmp_path) == []
    loaded = KnowledgeIndex.load(directory, embeddings, expected_hash=content_hash(articles[:1]))
    assert {c.article_id for c in loaded.chunks} == {articles[0].id}


def test_a_leftover_temp_dir_of_an_interrupted_save_does_not_break_loading(
    settings: Settings,
) -> None:
    embeddings = CountingEmbeddings()
    built = ensure_index(settings, embeddings)
    directory = settings.resolved_index_dir
    # A save killed half-way: its temp directory holds a partial, wrong index.
    partial = directory.parent / ".index-k1ll3d"
    partial.mkdir()
    (partial / "vectors.faiss").write_bytes(b"\x00\x01 half a faiss file")
    (partial / "manifest.json").write_text('{"format": 1, "content_hash": "', encoding="utf-8")
    embeddings.documents.clear()

    loaded = ensure_index(settings, embeddings)

    assert embeddings.documents == [], "the saved index is loaded, not rebuilt"
    assert [c.id for c in loaded.chunks] == [c.id for c in built.chunks]
    assert top_article(loaded, "Quraqlıqda suvarmanı necə aparım?") == "drought.az"
    service = KnowledgeService(settings, embeddings)
    assert len(service.index.chunks) == len(built.chunks)


def test_a_leftover_temp_dir_does_not_stop_the_next_save(settings: Settings) -> None:
    service = KnowledgeService(settings, HashingEmbeddings())
    _ = service.index
    (settings.resolved_index_dir.parent / ".index-k1ll3d").mkdir()

    article = service.ingest(title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az")

    assert_consistent(settings.resolved_index_dir)
    assert top_article(service.index, SAFFRON_QUESTION) == article.id


def test_an_interrupted_article_write_is_ignored(settings: Settings) -> None:
    embeddings = CountingEmbeddings()
    service = KnowledgeService(settings, embeddings)
    _ = service.index
    article = service.ingest(title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az")
    # A second ingest killed while writing its article: a temp file, half-written.
    folder = ingested_dir(settings)
    (folder / ".tmp-q8x2n1ab").write_text(
        "---\nid: kb-half-written\ntitle: Yarım", encoding="utf-8"
    )

    assert [a.id for a in load_articles(folder)] == [article.id]
    bundled, ingested = all_articles(settings)
    assert {a.id for a in bundled} == FIXTURE_IDS
    assert [a.id for a in ingested] == [article.id]
    assert [a.id for a, source in service.articles() if source == "ingested"] == [article.id]

    embeddings.documents.clear()
    reloaded = ensure_index(settings, embeddings)
    assert embeddings.documents == [], "the index still matches the articles: no rebuild"
    assert top_article(reloaded, SAFFRON_QUESTION) == article.id


# ---------------------------------------------------------------------------------- ingest/delete
def test_ingest_embeds_only_the_new_chunks_and_persists(settings: Settings) -> None:
    embeddings = CountingEmbeddings()
    service = KnowledgeService(settings, embeddings)
    before = len(service.index.chunks)
    embeddings.documents.clear()

    article = service.ingest(
        title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az", tags=["zəfəran"]
    )

    # Only the new article is embedded: its chunks ("title\ntext") and their sentences
    # ("title: sentence").
    chunk_texts = [t for t in embeddings.documents if t.startswith(SAFFRON_TITLE + "\n")]
    sentence_texts = [t for t in embeddings.documents if t.startswith(SAFFRON_TITLE + ": ")]
    assert chunk_texts and sentence_texts
    assert len(chunk_texts) + len(sentence_texts) == len(embeddings.documents)
    assert len(service.index.chunks) == before + len(chunk_texts)
    manifest = assert_consistent(settings.resolved_index_dir)
    bundled, ingested = all_articles(settings)
    assert manifest["content_hash"] == content_hash(bundled + ingested)
    stored = (ingested_dir(settings) / f"{article.id}.md").read_text(encoding="utf-8")
    assert SAFFRON_TEXT in stored

    # Another process: loads what was saved, embeds nothing, finds the article.
    fresh = CountingEmbeddings()
    again = KnowledgeService(settings, fresh)
    assert top_article(again.index, SAFFRON_QUESTION) == article.id
    assert fresh.documents == []


def test_delete_removes_the_article_everywhere(settings: Settings) -> None:
    embeddings = CountingEmbeddings()
    service = KnowledgeService(settings, embeddings)
    before = [c.id for c in service.index.chunks]
    article = service.ingest(title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az")
    embeddings.documents.clear()

    service.delete(article.id)

    assert embeddings.documents == [], "deleting re-embeds nothing"
    assert [c.id for c in service.index.chunks] == before
    assert not (ingested_dir(settings) / f"{article.id}.md").exists()
    manifest = assert_consistent(settings.resolved_index_dir)
    assert manifest["content_hash"] == content_hash(load_articles(FIXTURE_KB))
    assert article.id not in {a.id for a, _ in service.articles()}
    # Another process: the article stays deleted, and nothing is rebuilt.
    fresh = CountingEmbeddings()
    again = KnowledgeService(settings, fresh)
    assert [c.id for c in again.index.chunks] == before
    assert fresh.documents == []


def test_progress_is_reported_while_ingesting(settings: Settings) -> None:
    service = KnowledgeService(settings, HashingEmbeddings())
    _ = service.index
    calls: list[tuple[int, int]] = []

    service.ingest(
        title=SAFFRON_TITLE,
        content="\n\n".join([SAFFRON_TEXT] * 20),
        language="az",
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls
    assert calls[-1][0] == calls[-1][1]
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def _finishes(action: Callable[[], object]) -> bool:
    """Run `action` in a daemon thread; whether it finished (a hung one is left behind)."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(DEADLOCK_WAIT)
    return not thread.is_alive()


def test_ingest_works_before_the_index_was_loaded(settings: Settings) -> None:
    service = KnowledgeService(settings, HashingEmbeddings())

    assert _finishes(
        lambda: service.ingest(title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az")
    )
    assert top_article(service.index, SAFFRON_QUESTION).startswith("kb-")


def test_delete_works_before_the_index_was_loaded(settings: Settings) -> None:
    first = KnowledgeService(settings, HashingEmbeddings())
    _ = first.index
    article = first.ingest(title=SAFFRON_TITLE, content=SAFFRON_TEXT, language="az")
    service = KnowledgeService(settings, HashingEmbeddings())  # a new process

    assert _finishes(lambda: service.delete(article.id))
    assert article.id not in {c.article_id for c in service.index.chunks}


def test_a_bad_ingested_file_is_skipped_not_fatal(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # What an older release's injection left behind: unreadable front matter, a repeated id,
    # a bundled id. The server still starts, with the good articles.
    folder = ingested_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    good = (
        "---\nid: kb-ok\ntitle: Zəfəran\nlanguage: az\n---\n\n"
        "Zəfəran avqustda əkilir, quru torpaqda.\n"
    )
    (folder / "kb-ok.md").write_text(good, encoding="utf-8")
    (folder / "kb-ok-again.md").write_text(good, encoding="utf-8")
    (folder / "kb-broken.md").write_text("---\nid kb-broken\n", encoding="utf-8")
    (folder / "kb-clash.md").write_text(good.replace("kb-ok", "drought.en"), encoding="utf-8")
    _, ingested = all_articles(settings)
    assert [a.id for a in ingested] == ["kb-ok"]
    for skipped in ("kb-broken.md", "repeats the id kb-ok", "kb-clash.md"):
        assert skipped in caplog.text
    service = KnowledgeService(settings, HashingEmbeddings())
    assert {a.id for a, _ in service.articles()} >= {"kb-ok", "drought.en"}
