"""What a knowledge index derives from its chunks' words: the keyword index's tokens, the rare
names a question can point at, and each sentence's short stems with their IDF.

Each chunk's part (`ChunkTerms`) depends on the chunk alone: it is computed when the chunk is
written to the store and stored with it, so that a replica loading 100,000 chunks reads no
word again; only what spans chunks (document frequencies, which rare words are names, the
sentence stems' IDF) is put together at load. Computing them is a function of one word at a
time (`alim.text.keywords` and `content_stems` map and filter word by word), so it is done
once per *distinct* word and looked up for every occurrence. What comes out is exactly what
those functions give on the whole text (tests/unit/test_index_terms.py).

A sentence's stems are held as integer ids in one array (`SentenceStems`), not as a set of
strings per sentence: a set of a dozen short strings costs about 1.5 kB, an id 4 bytes.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import count
from typing import TYPE_CHECKING

import numpy as np

from alim.text import STEM_LENGTH, content_stems, fold, keywords, stem, words

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
    """Per distinct word: its keyword-index stem and whole-word token ("=word"), its sentence
    stem, and (raw words) its folded form; filled as a corpus is read."""

    def __init__(self) -> None:
        self.stem: dict[str, str | None] = {}
        self.whole: dict[str, str | None] = {}
        self.short: dict[str, str | None] = {}
        self.folded: dict[str, str] = {}

    def learn_keywords(self, found: Iterable[str]) -> None:
        for w in set(found).difference(self.stem):
            tokens = keywords(w)  # [], [stem] or [stem, "=word"]: one word's tokens
            self.stem[w] = next((t for t in tokens if not t.startswith("=")), None)
            self.whole[w] = next((t for t in tokens if t.startswith("=")), None)

    def learn_short(self, found: Iterable[str]) -> None:
        for w in set(found).difference(self.short):
            self.short[w] = next(iter(short_stems(w)), None)

    def fold(self, raw: list[str]) -> list[str]:
        for w in set(raw).difference(self.folded):
            self.folded[w] = fold(w)
        return list(map(self.folded.__getitem__, raw))


_HEADER = "alim-terms 1"
_PROBE = """## Suvarma və gübrələmə
Pomidoru Ağcanabat sortu ilə əkin. May ayında 20–25 kq/ha azot verin, e.g. karbamid.
Полив: 2 раза в неделю (сорт «Волгоградец»). Когда сажать картофель в Гяндже?
Dozalar belədir:
- Azot (N): 120 kq/ha
- **Fosfor:** 60 kq/ha. Payızda verin.
| Bitki | N | P2O5 |
|---|---|---|
| Kartof | 100–150 | 80–120 |
"""


@cache
def terms_version() -> str:
    """The first line of stored terms: this format, the index format (which changes with how
    a text is split into sentences) and a digest of a probe chunk's terms, so that terms stored
    before a change to the stemming, the stop words or the name rules are computed again."""
    from alim.knowledge.index import FORMAT_VERSION, Chunk, chunk_sentences

    probe = Chunk(
        id="probe#0",
        article_id="probe",
        group="probe",
        title="Pomidor (Solanum lycopersicum)",
        language="az",
        topic="probe",
        text=_PROBE,
        tags="tərəvəz, Ağcanabat",
    )
    (terms,) = chunk_terms([probe], [chunk_sentences(probe)])
    digest = hashlib.sha256(terms.body().encode("utf-8")).hexdigest()[:12]
    return f"{_HEADER} {FORMAT_VERSION} {digest}"


@dataclass(frozen=True)
class ChunkTerms:
    """What one chunk contributes to its index's keyword side, computed when it is written to
    the store and stored with it (`dumps`), so that a replica loading 100,000 chunks does not
    read their words again."""

    keywords: list[str]
    """BM25 tokens: the stems of `alim.text.keywords` over the title and tags, twice, and the
    text, in order."""
    wholes: list[str]
    """Its whole-word tokens ("=word": words longer than a stem), each once."""
    lower: list[str]
    """Words longer than a stem written in lower case in it (folded): not names."""
    inside: list[str]
    """Words longer than a stem capitalised in its title or inside a sentence (folded)."""
    sentences: list[list[str]]
    """Each of its sentences' (`chunk_sentences`) short stems, over "Title. Heading: text"."""

    def dumps(self) -> str:
        """The version line, then one line each (words hold no spaces), then one line per
        sentence."""
        return f"{terms_version()}\n{self.body()}"

    def body(self) -> str:
        lines = [self.keywords, self.wholes, self.lower, self.inside, *self.sentences]
        return "\n".join(" ".join(line) for line in lines)

    @classmethod
    def loads(cls, text: str | None) -> ChunkTerms | None:
        """The terms stored as `text`; None when there are none or they are of another
        version (then they are computed again)."""
        if not text:
            return None
        version, _, rest = text.partition("\n")
        lines = rest.split("\n")
        if version != terms_version() or len(lines) < 4:  # another version, or cut short
            return None
        keywords, wholes, lower, inside, *sentences = (line.split() for line in lines)
        return cls(keywords, wholes, lower, inside, sentences)


def chunk_terms(
    chunks: Sequence[Chunk], sentences: Sequence[list[tuple[str, str]]]
) -> list[ChunkTerms]:
    """Each chunk's terms; `sentences`: each chunk's `chunk_sentences`. Words never span the
    spaces and punctuation that join a title, tags, heading and text, so each part is read
    once (an article's title and tags once for all its chunks) and its tokens put together."""
    known = _Words()
    heads: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    stems_of: dict[str, set[str]] = {}  # titles and headings

    def tokens(text: str) -> tuple[list[str], list[str]]:
        found = words(text)
        known.learn_keywords(found)
        return (
            [t for t in map(known.stem.__getitem__, found) if t is not None],
            [t for t in map(known.whole.__getitem__, found) if t is not None],
        )

    def short(text: str) -> set[str]:
        found = words(text)
        known.learn_short(found)
        own = set(map(known.short.__getitem__, found))
        own.discard(None)
        return own  # type: ignore[return-value]

    def head_stems(text: str) -> set[str]:
        if (found := stems_of.get(text)) is None:
            found = stems_of[text] = short(text)
        return found

    out: list[ChunkTerms] = []
    for c, pairs in zip(chunks, sentences, strict=True):
        head = heads.get((c.title, c.tags))
        if head is None:
            (title, title_whole), (tags, tags_whole) = tokens(c.title), tokens(c.tags)
            head = heads[(c.title, c.tags)] = (
                title + title + tags + tags,
                title_whole + title_whole + tags_whole + tags_whole,
            )
        own, whole = tokens(c.text)
        letters = _LETTERS.findall(c.title) + _LETTERS.findall(c.tags) + _LETTERS.findall(c.text)
        inside = _LETTERS.findall(c.title) + _INSIDE_WORD.findall(c.tags)
        inside += _INSIDE_WORD.findall(c.text)
        of_title = head_stems(c.title)
        out.append(
            ChunkTerms(
                keywords=head[0] + own,
                wholes=list(dict.fromkeys(head[1] + whole)),
                lower=_long(known.fold([w for w in letters if w[0].islower()])),
                inside=_long(known.fold([w for w in inside if not w[0].islower()])),
                sentences=[
                    sorted(short(sentence).union(of_title, head_stems(heading)))
                    for heading, sentence in pairs
                ],
            )
        )
    return out


def _long(folded: list[str]) -> list[str]:
    """The distinct words longer than a stem: only they can be names."""
    return [w for w in dict.fromkeys(folded) if len(w) > STEM_LENGTH]


def names(terms: Sequence[ChunkTerms]) -> dict[str, list[int]]:
    """Name token ("=word") -> the chunks holding it (see NAME_MAX_CHUNKS)."""
    df: Counter[str] = Counter()
    lower: set[str] = set()  # written in lower case somewhere: a common word
    inside: set[str] = set()  # capitalised in a title or inside a sentence: a name
    for t in terms:
        df.update(t.wholes)
        lower.update(t.lower)
        inside.update(t.inside)
    rare = {
        w for w, n in df.items() if n <= NAME_MAX_CHUNKS and w[1:] in inside and w[1:] not in lower
    }
    stems = {stem(w[1:]) for w in rare}
    stem_df: Counter[str] = Counter()  # chunks holding the stem of a rare word
    if stems:
        for t in terms:
            stem_df.update(stems.intersection(t.keywords))
    found = {w for w in rare if stem_df[stem(w[1:])] <= 2 * NAME_MAX_CHUNKS}
    where: dict[str, list[int]] = {}
    if found:
        for i, t in enumerate(terms):
            for token in found.intersection(t.wholes):
                where.setdefault(token, []).append(i)
    return where


@dataclass(frozen=True)
class SentenceStems:
    """Each sentence's short stems and their IDF over the sentences: sentence j's stem ids
    are `ids[indptr[j]:indptr[j + 1]]`."""

    indptr: np.ndarray
    ids: np.ndarray
    vocabulary: list[str]
    idf: dict[str, float]
    """Stem -> log((n + 1) / (sentences holding it + 0.5))."""

    @classmethod
    def of(cls, terms: Iterable[ChunkTerms]) -> SentenceStems:
        """The sentences of these chunks, in turn."""
        vocabulary: defaultdict[str, int] = defaultdict(count().__next__)
        ids = array("i")
        indptr = array("q", [0])
        for t in terms:
            for found in t.sentences:
                ids.extend(map(vocabulary.__getitem__, found))
                indptr.append(len(ids))
        ids_array = np.frombuffer(ids, dtype=np.int32) if len(ids) else np.zeros(0, np.int32)
        df = np.bincount(ids_array, minlength=len(vocabulary)).tolist()
        n = len(indptr) - 1
        return cls(
            np.frombuffer(indptr, dtype=np.int64),
            ids_array,
            list(vocabulary),
            {w: float(np.log((n + 1) / (k + 0.5))) for w, k in zip(vocabulary, df, strict=True)},
        )

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def stems(self, j: int) -> frozenset[str]:
        """Sentence j's short stems."""
        start, end = self.indptr[j], self.indptr[j + 1]
        return frozenset(self.vocabulary[k] for k in self.ids[start:end].tolist())
