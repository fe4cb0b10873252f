"""The hybrid knowledge index and `ensure_index` (alim/knowledge/index.py, service.py), over the
fixture corpus with the hashing embedder."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from alim.errors import IndexCorrupt, IndexMismatch
from alim.knowledge.documents import Article, content_hash, load_articles
from alim.knowledge.index import FORMAT_VERSION, KnowledgeIndex, SearchOptions, chunk_sentences
from alim.knowledge.service import ensure_index
from alim.settings import Settings
from tests.conftest import FIXTURE_KB, make_settings
from tests.support.fakes import HashingEmbeddings

DROUGHT_AZ = "Quraqlıqda suvarmanı necə aparım?"
SEARCH_TYPES = ("similarity", "hybrid", "mmr")
REBUILD = "alim index build --force"


class OtherEmbeddings(HashingEmbeddings):
    name = "another-embedder"


@pytest.fixture
def index(embeddings: HashingEmbeddings) -> KnowledgeIndex:
    return KnowledgeIndex.build(load_articles(FIXTURE_KB), embeddings)


@pytest.fixture
def saved(index: KnowledgeIndex, tmp_path: Path) -> Path:
    directory = tmp_path / "index"
    index.save(directory)
    return directory


def _ids(hits: list) -> list[str]:  # type: ignore[type-arg]
    return [h.chunk.id for h in hits]


def test_build_chunks_every_fixture_article(index: KnowledgeIndex) -> None:
    assert {c.article_id for c in index.chunks} == {
        "drought.az",
        "drought.en",
        "frost.en",
        "wheat.ru",
    }
    assert index.dim == 128
    assert index.embedder == "hashing-stems"
    drought = next(c for c in index.chunks if c.article_id == "drought.az")
    assert drought.title == "Quraqlıqda suvarma"
    assert drought.group == "drought"
    assert drought.topic == "irrigation"
    assert drought.language == "az"
    assert "quraqlıq" in drought.tags


@pytest.mark.parametrize("search_type", SEARCH_TYPES)
@pytest.mark.parametrize("k", [1, 2, 3])
def test_each_search_type_returns_k_scored_hits(
    index: KnowledgeIndex, search_type: str, k: int
) -> None:
    hits = index.search(DROUGHT_AZ, SearchOptions(search_type=search_type, k=k))  # type: ignore[arg-type]
    assert len(hits) == k
    assert len(set(_ids(hits))) == k  # no chunk twice
    for h in hits:
        assert isinstance(h.score, float) and -1.0 <= h.score <= 1.0
        assert isinstance(h.relevance, float)
        assert isinstance(h.keyword_score, float) and h.keyword_score >= 0.0


@pytest.mark.parametrize("search_type", SEARCH_TYPES)
def test_the_azerbaijani_drought_question_finds_a_drought_chunk_first(
    index: KnowledgeIndex, search_type: str
) -> None:
    hits = index.search(DROUGHT_AZ, SearchOptions(search_type=search_type, k=3))  # type: ignore[arg-type]
    assert hits[0].chunk.group == "drought"


def test_hybrid_puts_the_keyword_match_in_the_question_language_first(
    index: KnowledgeIndex,
) -> None:
    hits = index.search(DROUGHT_AZ, SearchOptions(search_type="hybrid", k=2))
    assert hits[0].chunk.id == "drought.az#0"
    assert hits[0].keyword_score > 0
    assert hits[0].score > 0.2  # the two texts share words: quraqlıq, suvarma


def test_more_hits_than_chunks_returns_every_chunk(index: KnowledgeIndex) -> None:
    hits = index.search("frost", SearchOptions(k=10))
    assert sorted(_ids(hits)) == sorted(c.id for c in index.chunks)


def test_score_threshold_keeps_only_hits_with_that_cosine(index: KnowledgeIndex) -> None:
    everything = index.search("frost protection for orchards", SearchOptions(k=4))
    assert len(everything) == 4
    scores = sorted(h.score for h in everything)
    threshold = (scores[-1] + scores[-2]) / 2  # between the best and the second best
    kept = index.search(
        "frost protection for orchards", SearchOptions(k=4, score_threshold=threshold)
    )
    assert _ids(kept) == ["frost.en#0"]
    assert all(h.score >= threshold for h in kept)


@pytest.mark.parametrize("search_type", SEARCH_TYPES)
def test_an_unreachable_score_threshold_returns_nothing(
    index: KnowledgeIndex, search_type: str
) -> None:
    options = SearchOptions(search_type=search_type, k=4, score_threshold=1.01)  # type: ignore[arg-type]
    assert index.search(DROUGHT_AZ, options) == []


@pytest.mark.parametrize("search_type", SEARCH_TYPES)
def test_topics_filter_keeps_only_chunks_of_those_topics(
    index: KnowledgeIndex, search_type: str
) -> None:
    # A frost question would rank frost.en first; restricted to irrigation it cannot.
    hits = index.search(
        "frost protection for orchards",
        SearchOptions(search_type=search_type, k=4, topics=("irrigation",)),  # type: ignore[arg-type]
    )
    assert sorted(_ids(hits)) == ["drought.az#0", "drought.en#0"]
    assert {h.chunk.topic for h in hits} == {"irrigation"}


def test_topics_filter_with_several_topics(index: KnowledgeIndex) -> None:
    hits = index.search("frost", SearchOptions(k=4, topics=("crops", "weather-protection")))
    assert sorted(_ids(hits)) == ["frost.en#0", "wheat.ru#0"]


@pytest.mark.parametrize("search_type", SEARCH_TYPES)
def test_groups_filter_keeps_only_chunks_of_those_articles(
    index: KnowledgeIndex, search_type: str
) -> None:
    # A frost question would rank frost.en first; restricted to the wheat article it cannot.
    hits = index.search(
        "frost protection for orchards",
        SearchOptions(search_type=search_type, k=4, groups=("wheat",)),  # type: ignore[arg-type]
    )
    assert _ids(hits) == ["wheat.ru#0"]
    both = SearchOptions(k=4, topics=("irrigation",), groups=("drought", "wheat"))
    assert {h.chunk.group for h in index.search("frost", both)} == {"drought"}


def test_an_unknown_topic_returns_nothing(index: KnowledgeIndex) -> None:
    assert index.search("frost", SearchOptions(k=4, topics=("no-such-topic",))) == []


def test_an_empty_index_returns_no_hits(embeddings: HashingEmbeddings) -> None:
    empty = KnowledgeIndex.build([], embeddings)
    assert empty.chunks == []
    assert empty.search("anything") == []


def test_save_and_load_give_identical_results(
    index: KnowledgeIndex, saved: Path, embeddings: HashingEmbeddings
) -> None:
    loaded = KnowledgeIndex.load(saved, embeddings, expected_hash=index.content_hash)
    assert loaded.chunks == index.chunks
    assert loaded.content_hash == index.content_hash
    for search_type in SEARCH_TYPES:
        for query in (DROUGHT_AZ, "frost orchards", "озимая пшеница ржавчина"):
            options = SearchOptions(search_type=search_type, k=4)  # type: ignore[arg-type]
            assert loaded.search(query, options) == index.search(query, options)


def test_saving_over_an_existing_index_replaces_it(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    smaller = KnowledgeIndex.build(
        [a for a in load_articles(FIXTURE_KB) if a.language == "en"], embeddings
    )
    smaller.save(saved)
    loaded = KnowledgeIndex.load(saved, embeddings)
    assert {c.language for c in loaded.chunks} == {"en"}
    assert sorted(p.name for p in saved.parent.iterdir()) == ["index"]  # no temp dirs left


def test_persisted_metadata_is_json_not_pickle(index: KnowledgeIndex, saved: Path) -> None:
    assert sorted(p.name for p in saved.iterdir()) == [
        "chunks.json",
        "manifest.json",
        "sentences.npy",
        "vectors.faiss",
    ]
    chunks = json.loads((saved / "chunks.json").read_text(encoding="utf-8"))
    assert [c["id"] for c in chunks] == [c.id for c in index.chunks]
    assert chunks[0].keys() >= {"id", "article_id", "title", "language", "topic", "text"}
    manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["content_hash"] == content_hash(load_articles(FIXTURE_KB))
    assert manifest["embedder"] == "hashing-stems"
    assert manifest["dimension"] == 128
    assert manifest["chunks"] == len(index.chunks)
    for path in saved.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path.name} looks like a pickle"


def test_a_corrupted_vectors_file_raises_index_corrupt_with_the_rebuild_hint(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    (saved / "vectors.faiss").write_bytes(b"this is not a faiss index")
    with pytest.raises(IndexCorrupt, match=REBUILD) as info:
        KnowledgeIndex.load(saved, embeddings)
    assert info.value.code == "index_corrupt"
    assert info.value.status == 503


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '[{"id": "x"}]',  # chunks without their fields
        "[]",  # fewer chunks than the manifest and the vectors say
    ],
)
def test_a_corrupted_chunks_file_raises_index_corrupt_with_the_rebuild_hint(
    saved: Path, embeddings: HashingEmbeddings, content: str
) -> None:
    (saved / "chunks.json").write_text(content, encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=REBUILD):
        KnowledgeIndex.load(saved, embeddings)


def test_a_missing_vectors_file_raises_index_corrupt(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    (saved / "vectors.faiss").unlink()
    with pytest.raises(IndexCorrupt, match=REBUILD):
        KnowledgeIndex.load(saved, embeddings)


@pytest.mark.parametrize("damage", ["missing", "garbage", "fewer rows"])
def test_a_damaged_sentences_file_raises_index_corrupt(
    saved: Path, embeddings: HashingEmbeddings, damage: str
) -> None:
    path = saved / "sentences.npy"
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not an array")
    else:
        np.save(path, np.load(path)[:-1], allow_pickle=False)
    with pytest.raises(IndexCorrupt, match=REBUILD):
        KnowledgeIndex.load(saved, embeddings)


def test_an_articles_sentences_rank_the_one_that_answers_first(index: KnowledgeIndex) -> None:
    ranked = index.rank_sentences("When should I irrigate, morning or evening?", "drought.en")
    assert ranked[0].text.startswith("Irrigate early in the morning or in the evening")
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    mulch = index.rank_sentences("Does mulch keep moisture in the soil?", "drought.en")
    assert mulch[0].text.startswith("Cover the soil with mulch")
    assert index.rank_sentences("anything", "no-such-article") == []


def test_a_sentence_shares_a_word_with_the_question_across_its_endings(
    embeddings: HashingEmbeddings,
) -> None:
    # "сажать" / "сажайте", "удобрять" / "удобрения": Russian and Azerbaijani endings change
    # more than the keyword index's six-letter stems allow; the sentence that answers must
    # still count as sharing the question's words.
    article = Article(
        id="potato.ru",
        title="Картофель",
        language="ru",
        content=(
            "Клубни хранят в тёмном прохладном подвале всю зиму.\n"
            "Сажайте клубни в апреле, когда почва прогреется.\n"
            "Удобрения вносят под вспашку осенью, по анализу почвы.\n"
        ),
    )
    index = KnowledgeIndex.build([article], embeddings)
    assert index.rank_sentences("Когда сажать?", "potato.ru")[0].text.startswith("Сажайте")
    assert index.rank_sentences("Чем удобрять?", "potato.ru")[0].text.startswith("Удобрения")


def test_sentences_survive_saving_adding_and_removing_articles(
    index: KnowledgeIndex, saved: Path, embeddings: HashingEmbeddings
) -> None:
    def ranking(i: KnowledgeIndex, question: str, article: str) -> list[str]:
        return [r.text for r in i.rank_sentences(question, article)]

    question = "When should I irrigate, morning or evening?"
    expected = ranking(index, question, "drought.en")
    loaded = KnowledgeIndex.load(saved, embeddings)
    assert ranking(loaded, question, "drought.en") == expected
    smaller = loaded.without_article("frost.en", content_hash="x")
    assert ranking(smaller, "frost", "frost.en") == []
    assert ranking(smaller, question, "drought.en") == expected
    frost = [a for a in load_articles(FIXTURE_KB) if a.id == "frost.en"]
    again = smaller.with_articles(frost, content_hash="y")
    assert ranking(again, "frost", "frost.en") == ranking(index, "frost", "frost.en")
    assert again.group_articles["drought"] == {"az": "drought.az", "en": "drought.en"}


def test_a_corrupted_manifest_raises_index_corrupt(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    (saved / "manifest.json").write_text("{oops", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=REBUILD):
        KnowledgeIndex.load(saved, embeddings)


def test_an_index_of_another_embedder_raises_index_mismatch(saved: Path) -> None:
    with pytest.raises(IndexMismatch, match=REBUILD) as info:
        KnowledgeIndex.load(saved, OtherEmbeddings())
    assert "hashing-stems" in info.value.message
    assert "another-embedder" in info.value.message
    assert info.value.code == "index_mismatch"


def test_a_manifest_naming_another_embedder_raises_index_mismatch(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    manifest = json.loads((saved / "manifest.json").read_text(encoding="utf-8"))
    manifest["embedder"] = "someone-elses-model"
    (saved / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexMismatch, match="someone-elses-model"):
        KnowledgeIndex.load(saved, embeddings)


def test_an_out_of_date_index_raises_index_mismatch(
    saved: Path, embeddings: HashingEmbeddings
) -> None:
    with pytest.raises(IndexMismatch, match=REBUILD):
        KnowledgeIndex.load(saved, embeddings, expected_hash="0" * 64)


def test_a_missing_index_raises_index_mismatch(
    tmp_path: Path, embeddings: HashingEmbeddings
) -> None:
    with pytest.raises(IndexMismatch, match=REBUILD):
        KnowledgeIndex.load(tmp_path / "nowhere", embeddings)


# ---------------------------------------------------------------------------- ensure_index
def _embedded(index: KnowledgeIndex) -> int:
    """Texts an index embeds: each chunk and each of its sentences."""
    return len(index.chunks) + sum(len(chunk_sentences(c)) for c in index.chunks)


def test_ensure_index_builds_once_then_loads_without_embedding(
    settings: Settings, embeddings: HashingEmbeddings
) -> None:
    first = ensure_index(settings, embeddings)
    built_with = embeddings.calls
    assert built_with == _embedded(first) > 0
    assert (settings.resolved_index_dir / "manifest.json").exists()

    second = ensure_index(settings, embeddings)
    assert embeddings.calls == built_with, "a fresh index on disk is loaded, not re-embedded"
    assert second.chunks == first.chunks
    assert second.search(DROUGHT_AZ) == first.search(DROUGHT_AZ)


def test_ensure_index_rebuilds_when_asked(
    settings: Settings, embeddings: HashingEmbeddings
) -> None:
    ensure_index(settings, embeddings)
    built_with = embeddings.calls
    ensure_index(settings, embeddings, rebuild=True)
    assert embeddings.calls == 2 * built_with


def test_ensure_index_rebuilds_an_index_of_an_older_format(
    settings: Settings, embeddings: HashingEmbeddings
) -> None:
    # What an upgrade finds on disk: the index of the previous release, without sentences.npy.
    ensure_index(settings, embeddings)
    directory = settings.resolved_index_dir
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    manifest["format"] = FORMAT_VERSION - 1
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (directory / "sentences.npy").unlink()
    index = ensure_index(settings, embeddings)
    assert (directory / "sentences.npy").exists()
    assert KnowledgeIndex.load(directory, embeddings).chunks == index.chunks


def test_ensure_index_rebuilds_when_an_article_changes(
    tmp_path: Path, embeddings: HashingEmbeddings
) -> None:
    kb = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, kb)
    settings = make_settings(tmp_path / "data", kb_dir=kb)
    ensure_index(settings, embeddings)
    built_with = embeddings.calls

    path = kb / "frost.en.md"
    path.write_text(
        path.read_text(encoding="utf-8") + "\nSmudge pots with paraffin warm the orchard air.\n",
        encoding="utf-8",
    )
    rebuilt = ensure_index(settings, embeddings)
    assert embeddings.calls > built_with, "the changed knowledge base is re-embedded"
    assert rebuilt.content_hash == content_hash(load_articles(kb))
    assert any("paraffin" in c.text for c in rebuilt.chunks)
    assert rebuilt.search("paraffin smudge pots", SearchOptions(k=1))[0].chunk.id == "frost.en#0"

    manifest = json.loads(
        (settings.resolved_index_dir / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["content_hash"] == rebuilt.content_hash
    after_rebuild = embeddings.calls
    ensure_index(settings, embeddings)
    assert embeddings.calls == after_rebuild  # and the rebuilt index is the one persisted


def test_ensure_index_rebuilds_for_another_embedder(
    settings: Settings, embeddings: HashingEmbeddings
) -> None:
    ensure_index(settings, embeddings)
    other = OtherEmbeddings()
    index = ensure_index(settings, other)
    assert other.calls == _embedded(index) > 0
    assert index.embedder == "another-embedder"
    manifest = json.loads(
        (settings.resolved_index_dir / "manifest.json").read_text(encoding="utf-8")
    )
    assert manifest["embedder"] == "another-embedder"


def test_ensure_index_refuses_a_corrupted_index_instead_of_answering_from_it(
    settings: Settings, embeddings: HashingEmbeddings
) -> None:
    ensure_index(settings, embeddings)
    (settings.resolved_index_dir / "chunks.json").write_text("garbage", encoding="utf-8")
    with pytest.raises(IndexCorrupt, match=REBUILD):
        ensure_index(settings, embeddings)
    # The hint works: a forced rebuild repairs it.
    repaired = ensure_index(settings, embeddings, rebuild=True)
    assert ensure_index(settings, embeddings).chunks == repaired.chunks


# ------------------------------------------------------------------------ names of varieties
def _variety(article_id: str, name: str, month: str) -> Article:
    return Article(
        id=article_id,
        title=f"{name} ərik sortu",
        language="az",
        content=f"{name} ərikləri {month} ayında yetişir. {name} ağacları şaxtaya davamlıdır. "
        f"{name} meyvələrini bərk ikən yığın.",
    )


@pytest.mark.parametrize(("name", "expected"), [("Ağcanabat", "v1"), ("Ağcanarıx", "v2")])
def test_a_variety_named_in_the_question_finds_its_article_not_its_namesake(
    embeddings: HashingEmbeddings, name: str, expected: str
) -> None:
    # Both names stem to "agcana"; only the whole word tells them apart.
    articles = [
        *load_articles(FIXTURE_KB),
        _variety("v1", "Ağcanabat", "iyun"),
        _variety("v2", "Ağcanarıx", "iyul"),
    ]
    index = KnowledgeIndex.build(articles, embeddings)
    hits = index.search(f"{name} ərikləri nə vaxt yetişir?", SearchOptions(k=2))
    assert hits[0].chunk.article_id == expected


def test_the_best_sentence_of_a_language_is_the_best_its_articles_rank(
    index: KnowledgeIndex,
) -> None:
    question = "Does mulch keep moisture in the soil?"
    best = index.best_sentence(question, "en")
    assert best is not None and best.chunk is not None
    tops = [index.rank_sentences(question, a)[0] for a in ("drought.en", "frost.en")]
    winner = max(tops, key=lambda r: r.score)
    assert (best.text, best.score) == (winner.text, winner.score)
    assert best.chunk.article_id == "drought.en"
    # Leaving out the drought topic, the frost article's best sentence is the best there is.
    other = index.best_sentence(question, "en", exclude={"drought"})
    assert other is not None and other.chunk is not None
    assert other.chunk.article_id == "frost.en"
    assert index.best_sentence(question, "tr") is None  # no article in that language


def test_the_best_sentence_counts_the_question_s_cues_as_ranking_does(
    index: KnowledgeIndex,
) -> None:
    question = "Does mulch keep moisture in the soil?"
    for cue in ("evening", "frost", "mulch"):
        cues = [re.compile(cue, re.IGNORECASE)] * 20  # 0.4: enough to move a sentence up
        best = index.best_sentence(question, "en", cues)
        tops = [index.rank_sentences(question, a, cues)[0] for a in ("drought.en", "frost.en")]
        winner = max(tops, key=lambda r: r.score)
        assert best is not None and (best.text, best.score) == (winner.text, winner.score)
    evening = index.best_sentence(question, "en", [re.compile("evening")] * 20)
    assert evening is not None and "evening" in evening.text


def test_an_index_too_large_to_scan_names_no_best_sentence(
    index: KnowledgeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    import alim.knowledge.index as module

    monkeypatch.setattr(module, "BEST_SENTENCE_SCAN", 2)
    assert index.best_sentence("Does mulch keep moisture in the soil?", "en") is None


def test_the_blockwise_product_is_the_product() -> None:
    from alim.knowledge.index import BLAS_BLOCK, _single_threaded_product

    rng = np.random.default_rng(7)
    vector = rng.standard_normal(384).astype("float32")
    for rows in (1, BLAS_BLOCK // 384, BLAS_BLOCK // 384 + 1, 3406):
        matrix = rng.standard_normal((rows, 384)).astype("float32")
        product = _single_threaded_product(matrix, vector)
        assert product.shape == (rows,)
        assert np.allclose(product, matrix @ vector, rtol=1e-5, atol=1e-4)
