"""An uncovered topic's term that begins a word of the articles hands a growing question using
that word to an agronomist: 'коров' (cows) began 'божьи коровки' (ladybirds), 'мёд' (honey)
'медвяная роса' (honeydew), 'carp' 'çarpaz' (cross-pollination). Each term that still begins an
article word is listed here, read as the articles using it in the topic's own sense (bees in the
pesticide article, a combine in the harvest one, a sale in the storage one); a new one fails this
test until someone has read it."""

from __future__ import annotations

import json
from importlib import resources

from alim.knowledge.documents import load_articles
from alim.text import words
from alim.understanding import _pattern

SAME_SENSE = {
    "livestock": ["qoyun", "heyvan", "süd=", "livestock", "птиц", "скот"],
    "bees": [
        "arı=",
        "arıla",
        "arıçı",
        "pətək",
        "bee=",
        "bees=",
        "beekeep",
        "hive",
        "пчел",
        "улья",
        "ульи=",
        "пчёл",
    ],
    "fish": ["пруд"],
    "machinery": ["kombayn", "təmir", "repair", "комбайн", "ремонт"],
    "prices": ["satış", "price", "sell", "cost", "продаж", "qiyməti", "цену="],
    "subsidies": ["yardım"],
    "finance": ["banks="],
    "legal": ["qeydiyyat", "sertifikat", "law=", "legal", "register", "закон", "зарегистр"],
    "food_processing": ["сок=", "pickl"],
    "human_health": ["məlhəm"],
}


def test_no_uncovered_term_begins_an_article_word_in_another_sense() -> None:
    lexicon = json.loads((resources.files("alim") / "data" / "lexicon.json").read_text("utf-8"))
    article_words = {
        w for article in load_articles() for w in words(f"{article.title} {article.content}")
    }
    beginning = {}
    for topic, terms in lexicon["uncovered"].items():
        found = [
            term
            for term in terms
            if (pattern := _pattern([term])) and any(map(pattern.match, article_words))
        ]
        if found:
            beginning[topic] = found
    assert beginning == SAME_SENSE
