"""Knowledge-base articles: parsing, loading and the content hash (alim/knowledge/documents.py)."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path

import pytest

from alim.errors import InvalidRequest
from alim.knowledge.documents import (
    Article,
    bundled_kb_dir,
    content_hash,
    load_articles,
    parse_article,
)
from tests.conftest import FIXTURE_KB

GOOD = """---
id: wheat.az
group: wheat
title: Payızlıq buğdanın becərilməsi
language: az
topic: crops
tags: buğda, taxıl ,  , payızlıq
---
# Payızlıq buğdanın becərilməsi

Buğdanı oktyabrda səpin.

## Gübrələmə
Azotu yazda verin.
"""


def _article(front: str, body: str = "Mətn burada.\n") -> str:
    return f"---\n{front}---\n{body}"


def test_parses_a_good_article() -> None:
    a = parse_article(GOOD, source="wheat.az.md")
    assert a.id == "wheat.az"
    assert a.group == "wheat"
    assert a.group_id == "wheat"
    assert a.title == "Payızlıq buğdanın becərilməsi"
    assert a.language == "az"
    assert a.topic == "crops"
    assert a.tags == ("buğda", "taxıl", "payızlıq")  # trimmed, empty tags dropped
    assert a.source == "wheat.az.md"
    assert a.content == "Buğdanı oktyabrda səpin.\n\n## Gübrələmə\nAzotu yazda verin."


def test_title_heading_is_stripped_from_the_body() -> None:
    a = parse_article(GOOD)
    assert "Payızlıq buğdanın becərilməsi" not in a.content
    assert a.content.startswith("Buğdanı")


def test_a_first_heading_other_than_the_title_is_kept() -> None:
    a = parse_article(_article("id: x\ntitle: Title\nlanguage: en\n", "# Another heading\nText.\n"))
    assert a.content == "# Another heading\nText."


def test_optional_fields_default_and_group_falls_back_to_the_id() -> None:
    a = parse_article(_article("id: lone.en\ntitle: Lone\nlanguage: en\n"))
    assert (a.group, a.topic, a.tags, a.source) == ("", "", (), "")
    assert a.group_id == "lone.en"


def test_front_matter_keys_are_case_insensitive_and_values_trimmed() -> None:
    a = parse_article(_article("ID:  x.en \nTitle: A: B\nLANGUAGE: en\n"))
    assert a.id == "x.en"
    assert a.title == "A: B"  # only the first colon separates key and value
    assert a.language == "en"


def test_a_horizontal_rule_in_the_body_is_kept() -> None:
    a = parse_article(_article("id: x\ntitle: T\nlanguage: en\n", "Before.\n\n---\n\nAfter.\n"))
    assert a.content == "Before.\n\n---\n\nAfter."


def test_missing_front_matter_is_rejected_with_the_source_name() -> None:
    with pytest.raises(InvalidRequest, match=r"notes\.md: missing front matter"):
        parse_article("# Just a heading\n\nText.\n", source="notes.md")


def test_unterminated_front_matter_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="unterminated front matter"):
        parse_article("---\nid: x\ntitle: T\nlanguage: en\n\nText without an end marker.\n")


@pytest.mark.parametrize(
    ("front", "missing"),
    [
        ("title: T\nlanguage: en\n", "id"),
        ("id: x\nlanguage: en\n", "title"),
        ("id: x\ntitle: T\n", "language"),
        ("id: x\ntitle:\nlanguage: en\n", "title"),  # present but empty
        ("group: g\n", "id, title, language"),
    ],
)
def test_missing_required_fields_are_named(front: str, missing: str) -> None:
    with pytest.raises(InvalidRequest, match=f"a.md: missing {missing}$") as info:
        parse_article(_article(front), source="a.md")
    assert info.value.status == 422
    assert info.value.code == "invalid_request"


def test_a_front_matter_line_without_a_colon_is_rejected() -> None:
    with pytest.raises(InvalidRequest, match="bad front-matter line 'no colon here'"):
        parse_article(_article("id: x\nno colon here\ntitle: T\nlanguage: en\n"))


@pytest.mark.parametrize("body", ["", "\n\n   \n", "# Title\n", "# Title\n\n  \n"])
def test_an_empty_body_is_rejected(body: str) -> None:
    with pytest.raises(InvalidRequest, match="empty body"):
        parse_article(_article("id: x\ntitle: Title\nlanguage: en\n", body), source="x.md")


def _write(directory: Path, name: str, article_id: str, body: str = "Some text.") -> None:
    (directory / name).write_text(
        _article(f"id: {article_id}\ntitle: {article_id}\nlanguage: en\n", body + "\n"),
        encoding="utf-8",
    )


def test_load_articles_sorts_by_id_and_ignores_other_files(tmp_path: Path) -> None:
    _write(tmp_path, "a.md", "zeta")
    _write(tmp_path, "b.md", "alpha")
    (tmp_path / "README.txt").write_text("not an article", encoding="utf-8")
    articles = load_articles(tmp_path)
    assert [a.id for a in articles] == ["alpha", "zeta"]
    assert {a.source for a in articles} == {"a.md", "b.md"}


def test_load_articles_rejects_duplicate_ids(tmp_path: Path) -> None:
    _write(tmp_path, "one.md", "same.en")
    _write(tmp_path, "two.md", "same.en", "Other text.")
    _write(tmp_path, "three.md", "unique.en")
    with pytest.raises(InvalidRequest, match=r"duplicate article ids: same\.en$"):
        load_articles(tmp_path)


def test_load_articles_reports_which_file_is_malformed(tmp_path: Path) -> None:
    _write(tmp_path, "fine.md", "fine")
    (tmp_path / "broken.md").write_text("no front matter", encoding="utf-8")
    with pytest.raises(InvalidRequest, match=r"broken\.md"):
        load_articles(tmp_path)


def test_content_hash_is_stable_and_order_independent() -> None:
    articles = load_articles(FIXTURE_KB)
    first = content_hash(articles)
    assert first == content_hash(load_articles(FIXTURE_KB))
    assert first == content_hash(reversed(articles))
    assert len(first) == 64 and int(first, 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        {"content": "Changed text."},
        {"title": "Another title"},
        {"language": "ru"},
        {"group": "other"},
        {"topic": "other"},
        {"tags": ("new",)},
    ],
)
def test_content_hash_changes_with_anything_that_is_indexed(change: dict[str, object]) -> None:
    articles = load_articles(FIXTURE_KB)
    edited = [dataclasses.replace(articles[0], **change), *articles[1:]]  # type: ignore[arg-type]
    assert content_hash(edited) != content_hash(articles)


def test_content_hash_changes_when_an_article_is_added_or_removed() -> None:
    articles = load_articles(FIXTURE_KB)
    extra = Article(id="new.en", title="New", language="en", content="Text.")
    assert content_hash([*articles, extra]) != content_hash(articles)
    assert content_hash(articles[1:]) != content_hash(articles)


def test_content_hash_does_not_confuse_field_boundaries() -> None:
    a = Article(id="ab", title="c", language="en", content="x")
    b = Article(id="a", title="bc", language="en", content="x")
    assert content_hash([a]) != content_hash([b])


def test_the_bundled_knowledge_base_loads() -> None:
    articles = load_articles()
    assert [a.id for a in articles] == [a.id for a in load_articles(bundled_kb_dir())]
    assert len(articles) >= 40
    for a in articles:
        assert a.language in {"az", "en", "ru"}, a.id
        assert a.topic, a.id
        assert a.content.strip(), a.id
        assert a.source.startswith(a.group_id), a.id


def test_every_bundled_group_has_an_azerbaijani_and_an_english_article() -> None:
    languages: dict[str, set[str]] = defaultdict(set)
    for a in load_articles():
        languages[a.group_id].add(a.language)
    assert languages
    missing = {g: sorted({"az", "en"} - langs) for g, langs in languages.items()}
    assert {g: m for g, m in missing.items() if m} == {}
