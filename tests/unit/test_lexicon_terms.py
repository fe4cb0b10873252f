"""An uncovered topic's term that begins a word of the articles hands a growing question using
that word to an agronomist: 'коров' (cows) began 'божьи коровки' (ladybirds), 'мёд' (honey)
'медвяная роса' (honeydew), 'carp' 'çarpaz' (cross-pollination). Each term that still begins an
article word is listed here, read as the articles using it in the topic's own sense (bees in the
pesticide article, a combine in the harvest one, a sale in the storage one); a new one fails this
test until someone has read it."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from alim.knowledge.documents import load_articles
from alim.text import words
from alim.understanding import GENERAL_CROPS, Lexicon, bundled_lexicon, terms_pattern

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
            if (pattern := terms_pattern([term])) and any(map(pattern.match, article_words))
        ]
        if found:
            beginning[topic] = found
    assert beginning == SAME_SENSE


def test_a_lexicon_whose_crop_rules_name_an_unknown_topic_fails_to_load() -> None:
    """A topic kept uncovered with a crop named ('asking', 'whole') must be one of the uncovered
    topics: a typo fails when the lexicon loads, not on the first farmer's question to reach it."""
    data = json.loads((resources.files("alim") / "data" / "lexicon.json").read_text("utf-8"))
    Lexicon.from_dict(data)  # the bundled one loads
    data["uncovered_with_crop"]["asking"]["livestok"] = ["per day"]

    with pytest.raises(ValueError, match="livestok"):
        Lexicon.from_dict(data)


def test_the_lexicon_names_the_code_refers_to_exist() -> None:
    """Rules in the graph name lexicon kinds, crops and topics; one renamed in the lexicon would
    turn its rule off without an error (a propagation question answered again, a price sent to
    an agronomist)."""
    from graphs.nodes.assess import CROP_ASPECTS
    from graphs.nodes.route import NOT_FARMING, THRESHOLD_KINDS

    lexicon = bundled_lexicon()
    assert set(CROP_ASPECTS) <= set(lexicon.kinds) & set(lexicon.cues)
    assert THRESHOLD_KINDS <= set(lexicon.kinds)
    assert NOT_FARMING <= set(lexicon.uncovered)
    assert GENERAL_CROPS <= set(lexicon.crops)
