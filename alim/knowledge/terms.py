"""What a knowledge index derives from its chunks' words: the keyword index's tokens, the rare
names a question can point at, and each sentence's short stems with their IDF.

Each is a function of one word at a time (`alim.text.keywords` and `content_stems` map and
filter word by word), so it is computed once per *distinct* word of the corpus and looked up for
every occurrence: 100,000 chunks hold about ten million words but some tens of thousands of
distinct ones. What comes out is exactly what those functions give on the whole text
(tests/unit/test_index_terms.py compares them on the bundled base and on synthetic text).

A sentence's stems are held as integer ids in one array (`SentenceStems`), not as a set of
strings per sentence: a set of a dozen short strings costs about 1.5 kB, an id 4 bytes.
"""

from __future__ import annotations

import re
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from alim.text import content_stems, fold, keywords, stem, words

if TYPE_CHECKING:
    from alim.knowledge.index import Chunk

SENTENCE_STEM_LENGTH = 4
"""Letters of a word a question and a sentence must share for the keyword share: fewer than the
keyword index's stems, so that Azerbaijani and Russian case and verb endings still meet
("сажать" / "сажайте", "səpilir" / "səpin")."""
NAME_MAX_CHUNKS = 3
"""A name (a variety, a product, a place) is a word longer than a stem, always capitalised (and
so in a title or inside a sentence at least once), in at most this many chunks, with a stem that
is rare too (in at most twice as many): not a common word opening a sentence, not an inflected
one. A question naming it brings those chunks up (`KnowledgeIndex._named`), capitalised or not."""

_LETTERS = re.compile(r"[^\W\d_]+")
_MARKS = "[ \t,;«»\"'()–-]"
_INSIDE_WORD = re.compile(rf"(?<=[^\W_]){_MARKS}*\n?(?<![^\W\d_])([^\W\d_]+)")
"""A word standing inside a sentence: after a word or a number and then spaces or light marks
(or a line break right after them), so not the first word of a text or of a sentence."""


def short_stems(text: str) -> frozenset[str]:
    """A text's content stems cut to SENTENCE_STEM_LENGTH letters (a question's, here; a
    corpus's sentences go through `SentenceStems`, which gives the same)."""
    return frozenset(w[:SENTENCE_STEM_LENGTH] for w in content_stems(text))


class _Words:
    """Per distinct folded word: its keyword-index stem, its whole-word token ("=word"), its
    sentence stem; filled as a corpus is read."""

    def __init__(self) -> None:
        self.stem: dict[str, str | None] = {}
        self.whole: dict[str, str | None] = {}
        self.short: dict[str, int] = {}
        """word -> id of its sentence stem in `stems` (-1: none, a stop word or a number)."""
        self.stems: dict[str, int] = {}

    def learn_keywords(self, found: Iterable[str]) -> None:
        for w in set(found).difference(self.stem):
            tokens = keywords(w)  # [], [stem] or [stem, "=word"]: one word's tokens
            self.stem[w] = next((t for t in tokens if not t.startswith("=")), None)
            self.whole[w] = next((t for t in tokens if t.startswith("=")), None)

    def learn_short(self, found: Iterable[str]) -> None:
        for w in set(found).difference(self.short):
            short = short_stems(w)
            self.short[w] = (
                self.stems.setdefault(next(iter(short)), len(self.stems)) if short else -1
            )


def keyword_index(chunks: Sequence[Chunk]) -> tuple[list[list[str]], dict[str, list[int]]]:
    """Each chunk's BM25 tokens (the stems of `alim.text.keywords` over its title and tags,
    twice, and its text) and the rare names: name token ("=word") -> the chunks holding it."""
    known = _Words()
    heads: dict[tuple[str, str], tuple[list[str], list[str]]] = {}  # an article's title, tags

    def tokens(text: str) -> tuple[list[str], list[str]]:
        found = words(text)
        known.learn_keywords(found)
        return (
            [t for t in map(known.stem.__getitem__, found) if t is not None],
            [t for t in map(known.whole.__getitem__, found) if t is not None],
        )

    stems: list[list[str]] = []
    df: Counter[str] = Counter()
    wholes: list[list[str]] = []
    for c in chunks:
        # Words never span a space, so the text's tokens are its parts' tokens in turn.
        head = heads.get((c.title, c.tags))
        if head is None:
            (title, title_whole), (tags, tags_whole) = tokens(c.title), tokens(c.tags)
            head = heads[(c.title, c.tags)] = (
                title + title + tags + tags,
                title_whole + title_whole + tags_whole + tags_whole,
            )
        own, whole = tokens(c.text)
        own, whole = head[0] + own, head[1] + whole
        df.update(set(own).union(whole))
        stems.append(own)
        wholes.append(whole)
    return stems, _names(chunks, wholes, df)


def _names(
    chunks: Sequence[Chunk], wholes: list[list[str]], df: Counter[str]
) -> dict[str, list[int]]:
    """Name token -> the chunks holding it (see NAME_MAX_CHUNKS)."""
    lower, inside = written(chunks)
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
    if names:
        for i, found in enumerate(wholes):
            for token in names.intersection(found):
                where.setdefault(token, []).append(i)
    return where


def written(chunks: Sequence[Chunk]) -> tuple[set[str], set[str]]:
    """The folded words written in lower case somewhere (common words), and those capitalised
    in a title or inside a sentence (names, unless also in the first set)."""
    letters: set[str] = set()
    inside: set[str] = set()
    for c in chunks:
        for text in (c.title, c.tags, c.text):
            letters.update(_LETTERS.findall(text))
        inside.update(_LETTERS.findall(c.title))
        inside.update(_INSIDE_WORD.findall(c.tags))
        inside.update(_INSIDE_WORD.findall(c.text))
    return (
        {fold(w) for w in letters if w[0].islower()},
        {fold(w) for w in inside if not w[0].islower()},
    )


@dataclass(frozen=True)
class SentenceStems:
    """Each sentence's short stems (`short_stems` of its embedded text) and their IDF over the
    sentences: sentence j's stem ids are `ids[indptr[j]:indptr[j + 1]]`."""

    indptr: np.ndarray
    ids: np.ndarray
    vocabulary: list[str]
    idf: dict[str, float]
    """Stem -> log((n + 1) / (sentences holding it + 0.5))."""

    @classmethod
    def of(cls, sentences: Iterable[tuple[str, str, str]]) -> SentenceStems:
        """Over each sentence's (title, heading, sentence): what it is embedded and matched as,
        "Title. Heading: sentence" (`alim.knowledge.index._sentence_text`); no word spans the
        punctuation and space between the parts, so the parts' stems are the text's."""
        known = _Words()
        heads: dict[str, set[int]] = {}  # titles and headings, each read once

        def stems_of(text: str) -> set[int]:
            found = words(text)
            known.learn_short(found)
            own = set(map(known.short.__getitem__, found))
            own.discard(-1)
            return own

        ids = array("i")
        indptr = array("q", [0])
        for title, heading, sentence in sentences:
            if (of_title := heads.get(title)) is None:
                of_title = heads[title] = stems_of(title)
            if (of_heading := heads.get(heading)) is None:
                of_heading = heads[heading] = stems_of(heading)
            ids.extend(stems_of(sentence).union(of_title, of_heading))
            indptr.append(len(ids))
        vocabulary = list(known.stems)
        ids_array = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32)
        df = np.bincount(ids_array, minlength=len(vocabulary)).tolist()
        n = len(indptr) - 1
        return cls(
            np.frombuffer(indptr, dtype=np.int64),
            ids_array,
            vocabulary,
            {w: float(np.log((n + 1) / (k + 0.5))) for w, k in zip(vocabulary, df, strict=True)},
        )

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def stems(self, j: int) -> frozenset[str]:
        """Sentence j's short stems."""
        start, end = self.indptr[j], self.indptr[j + 1]
        return frozenset(self.vocabulary[k] for k in self.ids[start:end].tolist())
