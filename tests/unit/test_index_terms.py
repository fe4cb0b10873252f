"""What an index derives from its chunks' words (alim/knowledge/terms.py), computed once per
distinct word, against the word-by-word derivation it replaces (`_reference_*` below: the code
of `KnowledgeIndex.__init__` before issue 13's load-time work), on the bundled base, on the
scale benchmark's synthetic chunks and on text written to hit the edge cases (names after a
line break, a digit or a quote; words mixing digits and letters; Cyrillic; all capitals)."""

from __future__ import annotations

import random
import re
from collections import Counter

import numpy as np
import pytest

from alim.knowledge.documents import load_articles
from alim.knowledge.index import (
    Chunk,
    KnowledgeIndex,
    _sentence_text,
    chunk_articles,
    chunk_sentences,
)
from alim.knowledge.terms import (
    NAME_MAX_CHUNKS,
    ChunkTerms,
    SentenceStems,
    chunk_terms,
    names,
    short_stems,
)
from alim.text import content_stems, fold, keywords, stem
from bench.scale import synthetic_chunks
from tests.support.fakes import HashingEmbeddings

_WORD = re.compile(r"[^\W\d_]+")
_INSIDE = re.compile(r"[^\W_][ \t,;«»\"'()–-]*$")


def _reference_keywords(chunk: Chunk) -> list[str]:
    return keywords(f"{chunk.title} {chunk.title} {chunk.tags} {chunk.tags} {chunk.text}")


def _reference_written(chunks: list[Chunk]) -> tuple[set[str], set[str]]:
    lower: set[str] = set()
    inside: set[str] = set()
    for c in chunks:
        for text in (c.title, c.tags, c.text):
            for m in _WORD.finditer(text):
                word = m.group()
                if word[0].islower():
                    lower.add(fold(word))
                elif text is c.title or _INSIDE.search(text, 0, m.start()):
                    inside.add(fold(word))
    return lower, inside


def _reference_names(chunks: list[Chunk], tokens: list[list[str]]) -> dict[str, list[int]]:
    df: Counter[str] = Counter()
    for found in tokens:
        df.update(set(found))
    lower, inside = _reference_written(chunks)
    names = {
        t
        for t, n in df.items()
        if t.startswith("=")
        and n <= NAME_MAX_CHUNKS
        and t[1:] in inside
        and t[1:] not in lower
        and df[stem(t[1:])] <= 2 * NAME_MAX_CHUNKS
    }
    where: dict[str, list[int]] = {}
    for i, found in enumerate(tokens):
        for token in names.intersection(found):
            where.setdefault(token, []).append(i)
    return where


def _reference_short_stems(text: str) -> frozenset[str]:
    return frozenset(w[:4] for w in content_stems(text))


_PIECES = (
    "Ağcanabat|ağcanabat|Ağcanar|Qızıl Əhmədi|«Qızıl Əhmədi»|ПОМИДОР|помидор|Картофель|"
    "(Невский)|– Fuzuli|Fuzuli|B12vitamin|12Gəncəbasar|Gəncəbasar|pH|NPK|e.g.|1.|-|**Label:**|"
    "## Heading Name|| a | b |||Xıdırnəbi|İsmayıllı|ISMAYILLI|Şəmkir|şəmkir|O'Henry|Ёлочка|"
    "ёлочка|x|20|%"
).split("|")


def _invented(rnd: random.Random) -> str:
    """A made-up word (a rare one: a name, if it is always capitalised)."""
    letters = rnd.choice(["abcdeəfgğhxıijkqlmnoöprsştuüvyz", "абвгдеёжзиклмнопрстуфхцчшыэюя"])
    word = "".join(rnd.choices(letters, k=rnd.randint(5, 10)))
    return rnd.choice([word.capitalize(), word.capitalize(), word, word.upper()])


def _fuzz_chunks(n: int, seed: int) -> list[Chunk]:
    rnd = random.Random(seed)
    separators = [" ", " ", " ", ". ", ", ", "\n", "\n\n", ": ", " (", ") ", "\t", "–", "2"]
    pieces = _PIECES + [_invented(rnd) for _ in range(400)]
    chunks = []
    for i in range(n):
        text = "".join(
            rnd.choice(pieces if rnd.random() < 0.3 else _PIECES) + rnd.choice(separators)
            for _ in range(40)
        )
        chunks.append(
            Chunk(
                id=f"fz{i // 2}#{i % 2}",
                article_id=f"fz{i // 2}",
                group=f"fz{i // 2}",
                title=" ".join(rnd.choices(_PIECES, k=3)),
                language=rnd.choice(["az", "en", "ru"]),
                topic="t",
                text=text,
                tags=", ".join(rnd.choices(_PIECES, k=2)),
            )
        )
    return chunks


CORPORA = {
    "bundled": lambda: chunk_articles(load_articles(None)),
    "synthetic": lambda: synthetic_chunks("ds-t", 400, seed=5),
    "fuzz": lambda: _fuzz_chunks(300, seed=11),
}


@pytest.fixture(scope="module", params=sorted(CORPORA))
def chunks(request: pytest.FixtureRequest) -> list[Chunk]:
    return CORPORA[request.param]()


def _terms(chunks: list[Chunk]) -> list[ChunkTerms]:
    return chunk_terms(chunks, [chunk_sentences(c) for c in chunks])


def test_keyword_tokens_and_names_are_those_of_the_word_by_word_derivation(
    chunks: list[Chunk],
) -> None:
    terms = _terms(chunks)
    reference = [_reference_keywords(c) for c in chunks]
    assert [t.keywords for t in terms] == [
        [k for k in ks if not k.startswith("=")] for ks in reference
    ]
    assert [t.wholes for t in terms] == [
        list(dict.fromkeys(k for k in ks if k.startswith("="))) for ks in reference
    ]
    found = names(terms)
    assert found or chunks[0].dataset == "ds-t"  # the synthetic words are no names
    assert found == _reference_names(chunks, reference)
    lower, inside = _reference_written(chunks)
    assert set().union(*(t.lower for t in terms)) == {w for w in lower if len(w) > 6}
    assert set().union(*(t.inside for t in terms)) == {w for w in inside if len(w) > 6}


def test_every_sentence_has_the_stems_and_idf_of_the_word_by_word_derivation(
    chunks: list[Chunk],
) -> None:
    index = KnowledgeIndex(
        chunks,
        np.asarray(HashingEmbeddings().embed_documents([c.text for c in chunks])),
        embeddings=HashingEmbeddings(),
        content_hash="terms",
    )
    headed = [_sentence_text(c, h, s) for c in chunks for h, s in chunk_sentences(c)]
    expected = [_reference_short_stems(t) for t in headed]
    stems = index._stems
    assert len(stems) == len(headed)
    assert [stems.stems(j) for j in range(len(stems))] == expected
    df: Counter[str] = Counter()
    for found in expected:
        df.update(found)
    n = len(expected)
    assert stems.idf == {w: float(np.log((n + 1) / (k + 0.5))) for w, k in df.items()}
    for query in ("Pomidorda fitoftora", "Когда сажать картофель?", "Gəncəbasar 12 ton"):
        assert short_stems(query) == _reference_short_stems(query)


def test_stored_terms_read_back_as_they_were_and_only_in_their_version(
    chunks: list[Chunk],
) -> None:
    terms = _terms(chunks)
    assert [ChunkTerms.loads(t.dumps()) for t in terms] == terms
    stored = terms[0].dumps()
    assert ChunkTerms.loads(stored.replace("alim-terms 1", "alim-terms 0", 1)) is None
    assert ChunkTerms.loads(None) is None
    assert ChunkTerms.loads(stored.split("\n", 1)[0] + "\none line") is None
    assert ChunkTerms.loads("") is None


def test_an_index_from_stored_terms_is_the_index_from_its_chunks(chunks: list[Chunk]) -> None:
    vectors = np.asarray(HashingEmbeddings().embed_documents([c.text for c in chunks]))
    built = KnowledgeIndex(chunks, vectors, embeddings=HashingEmbeddings(), content_hash="h")
    stored = [ChunkTerms.loads(t.dumps()) for t in _terms(chunks)]
    assert None not in stored
    loaded = KnowledgeIndex(
        chunks,
        vectors,
        embeddings=HashingEmbeddings(),
        content_hash="h",
        terms=stored,  # type: ignore[arg-type]
    )
    assert loaded._names == built._names
    assert loaded._stems.idf == built._stems.idf
    assert [loaded._stems.stems(j) for j in range(len(loaded._stems))] == [
        built._stems.stems(j) for j in range(len(built._stems))
    ]
    for query in ("pomidor suvarma", "картофель", "apple water"):
        assert np.array_equal(loaded._keyword_scores(query), built._keyword_scores(query))


def test_an_empty_corpus_has_no_terms() -> None:
    assert chunk_terms([], []) == []
    assert names([]) == {}
    stems = SentenceStems.of([])
    assert (len(stems), stems.idf) == (0, {})
