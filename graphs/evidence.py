"""The evidence an answer rests on: which articles are quoted, which of their sentences, in what
order, and how they are cited.

Chosen in `retrieve` (which holds the index and the query vector), quoted by `generate`, shown to
the agronomist by `escalate`. Articles follow the retrieval order of their topics; each topic is
quoted in the question's language whenever the knowledge base has that version, retrieved or not
(the embedder is multilingual, so a Russian question may well retrieve the Azerbaijani text of a
topic that also exists in Russian). Within an article, sentences are ranked by their own vectors
(computed at index time) and the question's words: the sentence that answers comes first.
An article whose best sentence answers clearly better than the first topic's best sentence leads
instead (the nitrogen sentence of the fertiliser article, not the wheat article, for "my wheat's
lower leaves are yellow: what is missing?"), retrieved or not: the best sentence of all the
articles in the question's language is looked for too (`KnowledgeIndex.best_sentence`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from alim.knowledge.index import BUNDLED, KnowledgeIndex, RankedSentence, SearchOptions
from alim.text import fold, stems
from alim.understanding import (
    Understanding,
    answer_cues,
    foreign_topics,
    labelled_for_others,
    own_topics,
    topics_read,
)
from graphs.state import Chunk, Evidence, Source
from tools.knowledge import hit_to_dict

MAX_ARTICLES = 3
RELATIVE_RELEVANCE = 0.7
"""An article beyond the first is cited only if it is at least this relevant relative to it."""
SENTENCES_KEPT = 8
"""Sentences kept per article: more than any answer quotes, few enough for a model's context."""
LEAD_MARGIN = 0.01
"""How much better (in sentence score) another article's best sentence must be to lead."""


ENTITY_POOL = 3
"""Candidates per wanted chunk, among which passages about the question's crop move up."""


def entity_first(
    chunks: list[Chunk], groups: tuple[str, ...], k: int, foreign: Collection[str] = ()
) -> list[Chunk]:
    """The k best chunks: those naming what the question names (a variety, a product) first,
    then those of the question's crop topics, then the rest (each in retrieval order).
    `foreign`: the articles of crops the question does not name (`foreign_topics`); one of
    them naming what the question names is no answer about its crop (the rice article names
    Bərdə too, for "yonca əkmək istəyirəm Bərdədə"), and keeps its place among the rest."""
    first = [c for c in chunks if c.get("named") and c["group"] not in foreign]
    wanted = [c for c in chunks if c["group"] in groups and not c.get("named")]
    taken = {id(c) for c in (*first, *wanted)}
    return (first + wanted + [c for c in chunks if id(c) not in taken])[:k]


def evidence_for(
    index: KnowledgeIndex,
    query: str,
    understanding: Understanding | None,
    language: str,
    options: SearchOptions,
) -> tuple[list[Chunk], list[Evidence]]:
    """What a turn searches and quotes, for the `retrieve` node and for anyone who must show
    the same (the agronomists' inbox): the `options.k` best chunks, those of the question's
    topics first among ENTITY_POOL times as many candidates, and the evidence `gather` makes
    of them with what the question asks.

    When none of the candidates is of the question's topics (the model may place
    "Pambığa hektara nə qədər azot lazımdır?" far from every cotton passage), the best chunk
    of those topics, searched on their own, takes the last place: the answer and the
    confidence then weigh the article the farmer asked about, beside what the search found.
    So does the best chunk of the article the answer leads with, when none of the chunks is
    of it (the frost article, read for "а на ночь заморозок, чем спасать?" about tomato
    seedlings): the confidence (graphs.nodes.assess) weighs what the answer says."""
    u = understanding
    groups = u.groups if u is not None else ()
    wide = replace(options, k=options.k * ENTITY_POOL) if groups else options
    hits = [hit_to_dict(h) for h in index.search(query, wide)]
    chunks = entity_first(hits, groups, options.k, foreign_topics(u))
    if groups and not any(h["group"] in groups for h in hits):
        chunks = _with_best_of(index, query, options, chunks, groups)
    evidence = evidence_of(index, query, chunks, u, language)
    if evidence and evidence[0]["group"] not in {c["group"] for c in chunks}:
        chunks = _with_best_of(index, query, options, chunks, (evidence[0]["group"],))
    return chunks, evidence


def _with_best_of(
    index: KnowledgeIndex,
    query: str,
    options: SearchOptions,
    chunks: list[Chunk],
    groups: tuple[str, ...],
) -> list[Chunk]:
    """The chunks with the best of those topics' own in the last place (none found: as they
    were)."""
    best = index.search(query, replace(options, k=1, groups=groups))
    return [*chunks[: options.k - 1], hit_to_dict(best[0])] if best else chunks


def evidence_of(
    index: KnowledgeIndex,
    query: str,
    chunks: Sequence[Chunk],
    u: Understanding | None,
    language: str,
) -> list[Evidence]:
    """The evidence `gather` makes of a turn's chunks with what its question asks (its cues,
    the topics it reads, the crops it names): `evidence_for` after the search, which the
    benchmark times alone."""

    def names(group: str, pattern: re.Pattern[str]) -> bool:
        versions = index.group_articles.get(group, {})
        article = versions.get(language) or next(iter(versions.values()), None)
        return article is not None and bool(pattern.search(fold(index.article_text(article))))

    cues = answer_cues(u)
    foreign = foreign_topics(u)
    best = index.best_sentence(query, language, cues, foreign)
    return gather(
        index,
        query,
        chunks,
        language,
        cues,
        topics_read(u, names),
        foreign,
        own_topics(u),
        name_sections=u is not None and "diagnosis" in u.kinds,
        others=lambda text: labelled_for_others(text, u),
        challenger=(
            (best.chunk.article_id, best.chunk.group, best.score) if best and best.chunk else None
        ),
    )


def choose_articles(
    chunks: Sequence[Chunk],
    language: str,
    versions: dict[str, dict[str, str]],
    read_too: Sequence[str] = (),
    foreign: Collection[str] = (),
    own: Sequence[str] = (),
) -> list[tuple[str, str, float | None]]:
    """(article id, group, its best retrieved chunk's cosine) for the topics worth citing, best
    first.

    `versions`: article group -> {language: article id}. Topics far less relevant than the best
    one are left out, unless they name what the question names (a variety, a product).
    `read_too`: topics the kind of question reads (the sowing calendar for "when to sow"),
    retrieved or not; they come right after the first topic (cosine None when not retrieved).
    `foreign`: topics of crops the question does not name: never cited (the wheat article's
    seed rate is no answer to "how much onion seed per hectare?").
    `own`: the topics of the crops the question names: when it names one whose article is not
    among those picked (not retrieved, or far less relevant than the first), that article is
    read like `read_too`, first ("qışlıq qovunları necə saxlayım?" is answered by the melon
    article's storage sentence, though the word for winter brought the frost article up). A
    question naming several crops compares them: the articles retrieval found answer it."""
    best: dict[str, Chunk] = {}  # group -> its best retrieved chunk (chunks come best first)
    for c in chunks:
        group = c.get("group") or c["article_id"]
        if group not in foreign:
            best.setdefault(group, c)
    picked: list[str] = []
    top: float | None = None
    for group, chunk in best.items():
        relevance = chunk.get("relevance", 0.0)
        if top is None:
            top = relevance
        elif not chunk.get("named") and (top <= 0 or relevance < RELATIVE_RELEVANCE * top):
            continue
        picked.append(group)
    missing = [g for g in own if g not in picked] if len(own) == 1 else []
    extra = [
        g for g in dict.fromkeys((*missing, *read_too)) if g in versions and g not in picked[:1]
    ]
    order = [*picked[:1], *extra, *(g for g in picked[1:] if g not in extra)][:MAX_ARTICLES]
    chosen: list[tuple[str, str, float | None]] = []
    for group in order:
        chunk_or_none = best.get(group)
        fallback = (
            chunk_or_none["article_id"] if chunk_or_none else next(iter(versions[group].values()))
        )
        article = versions.get(group, {}).get(language, fallback)
        chosen.append((article, group, chunk_or_none["score"] if chunk_or_none else None))
    return chosen


def gather(
    index: KnowledgeIndex,
    question: str,
    chunks: Sequence[Chunk],
    language: str,
    cues: Sequence[re.Pattern[str]] = (),
    read_too: Sequence[str] = (),
    foreign: Collection[str] = (),
    own: Sequence[str] = (),
    *,
    name_sections: bool = False,
    challenger: tuple[str, str, float] | None = None,
    others: Callable[[str], bool] | None = None,
) -> list[Evidence]:
    """The numbered evidence for a question from its retrieved chunks; `cues`: what a sentence
    answering it holds (alim.understanding.answer_cues); `read_too`, `foreign`, `own`: see
    `choose_articles`;
    `challenger`: (article id, group, score) of the article holding the best sentence of the whole
    knowledge base in the question's language (`KnowledgeIndex.best_sentence`, foreign topics
    left out): when the chunks missed it and it answers clearly better (LEAD_MARGIN) than every
    article they found, it leads and the last article gives way (the Fusarium wilt sentence of
    the diseases article for "tomato plants wilting, the stem brown inside", which the tomato and
    greenhouse articles outranked in retrieval);
    `others`: whether a sentence is labelled for crops the question does not name: such
    sentences come after the rest of their article ("**Xiyar, qovun, qarpız:** … 25–30 gün" of
    the seedlings article is no answer about rice seedlings; `labelled_for_others`);
    `name_sections`: lead each article with the heading of its best sentence's section when
    the sentence does not say it (a diagnosis: the symptoms sentence under "Sunscald of fruit"
    is quoted as "**Sunscald of fruit:** …", so the answer names what the farmer sees)."""

    def rank(article_id: str) -> list[RankedSentence]:
        ranked = index.rank_sentences(question, article_id, cues)
        if others is not None:
            kept: list[RankedSentence] = []
            behind: list[RankedSentence] = []
            for r in ranked:  # best first, until SENTENCES_KEPT are not for other crops
                (behind if others(r.text) else kept).append(r)
                if len(kept) == SENTENCES_KEPT:
                    break
            ranked = kept + behind
        return ranked[:SENTENCES_KEPT]

    ranked_articles = [
        (article_id, group, score, ranked)
        for article_id, group, score in choose_articles(
            chunks, language, index.group_articles, read_too, foreign, own
        )
        if (ranked := rank(article_id))
    ]
    if (
        challenger is not None
        and ranked_articles
        and challenger[2] > max(a[3][0].score for a in ranked_articles) + LEAD_MARGIN
        and all(article_id != challenger[0] for article_id, *_ in ranked_articles)
        and (ranked := rank(challenger[0]))
    ):
        ranked_articles = [(*challenger[:2], None, ranked), *ranked_articles][:MAX_ARTICLES]
    if ranked_articles:
        leader = max(ranked_articles, key=lambda a: a[3][0].score)
        if leader[3][0].score > ranked_articles[0][3][0].score + LEAD_MARGIN:
            ranked_articles.remove(leader)
            ranked_articles.insert(0, leader)
    evidence: list[Evidence] = []
    for article_id, group, score, ranked in ranked_articles:
        sentences = [r.text for r in ranked]
        cited = ranked[0].chunk
        if name_sections:
            sentences[0] = _named(ranked[0], index.article_title(article_id))
        evidence.append(
            Evidence(
                n=len(evidence) + 1,
                article_id=article_id,
                group=group,
                title=index.article_title(article_id),
                language=index.article_language(article_id),
                score=score if score is not None else ranked[0].score,
                sentences=sentences,
                scores=[r.score for r in ranked],
                text=" ".join(sentences),
                dataset_id=cited.dataset if cited else BUNDLED,
                chunk_index=cited.position if cited else 0,
                page_number=cited.page if cited else None,
            )
        )
    return evidence


def _named(sentence: RankedSentence, title: str) -> str:
    """The sentence led by its section's heading, unless it has a label of its own, the heading
    is the article's title, or the sentence already holds the heading's words."""
    heading = sentence.heading.strip()
    if not heading or sentence.text.startswith("**") or fold(heading) == fold(title):
        return sentence.text
    if set(stems(heading)) <= set(stems(sentence.text)):
        return sentence.text
    return f"**{heading}:** {sentence.text}"


def sources_of(evidence: Sequence[Evidence]) -> list[Source]:
    return [
        {
            "id": e["article_id"],
            "title": e["title"],
            "score": e["score"],
            "document_id": e["article_id"],
            "dataset_id": e.get("dataset_id", BUNDLED),
            "chunk_index": e.get("chunk_index", 0),
            "page_number": e.get("page_number"),
        }
        for e in evidence
    ]
