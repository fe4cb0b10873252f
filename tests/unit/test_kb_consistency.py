"""The language versions of one knowledge-base topic state the same numbers: a farmer reading the
Russian article must not get another temperature, date or rate than one reading the Azerbaijani."""

from __future__ import annotations

import re
from collections import defaultdict

from alim.knowledge.documents import Article, load_articles

NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)?")


def numbers(article: Article) -> set[str]:
    """The article's numbers, decimal commas read as points ("6,5" = "6.5")."""
    return {n.replace(",", ".") for n in NUMBER.findall(article.content)}


def test_every_language_version_of_a_topic_has_the_same_numbers() -> None:
    by_group: dict[str, list[Article]] = defaultdict(list)
    for article in load_articles():
        by_group[article.group_id].append(article)
    disagreements = {}
    for group, versions in by_group.items():
        sets = {a.language: numbers(a) for a in versions}
        union = set().union(*sets.values())
        missing = {lang: sorted(union - found) for lang, found in sets.items() if union - found}
        if missing:
            disagreements[group] = missing
    assert disagreements == {}


def test_the_check_sees_a_changed_number() -> None:
    az = Article("t.az", "T", "az", "Kartofu 4–6 °C-də saxlayın.", group="t")
    en = Article("t.en", "T", "en", "Store potatoes at 3–5 °C.", group="t")
    assert numbers(az) != numbers(en)
