"""`assess`: how far the retrieved evidence answers the question; low confidence escalates.

Confidence (agronomy turns) combines three signals of the retrieved chunks, each in [0, 1]:
- coverage: the largest share of the question's content words found in one chunk, compared by
  their first COVERAGE_PREFIX letters;
- dense: the best language-debiased similarity, mapped linearly from DENSE_LOW to DENSE_HIGH;
- consistency: the share of chunks from the best chunk's article group.
confidence = 0.5·coverage + 0.3·dense + 0.2·consistency. It is 0 for a question on a topic the
knowledge base does not cover (`Understanding.uncovered`), for a question on varieties that
names one no retrieved chunk holds (`unknown_names`), for one on propagating a crop or on its
fruit cracking that no retrieved passage on that crop tells of (`unanswered_aspect`), and for
one describing what ails a crop by signs none of which a retrieved passage on that crop, or a
general one, holds (`unseen_signs`). The weights and the default threshold
(graphs.context.Context.escalation_threshold) were chosen on `eval/questions.jsonl` plus
questions the knowledge base does not cover; `alim eval` reports what they give.
Weather turns do not escalate: without a forecast they still answer with general advice.
Past this node, a hosted model may still hand an agronomy turn over, with this confidence, when
it finds no answer in the passages (`NO_ANSWER`, graphs.nodes.generate).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from langgraph.runtime import Runtime

from alim.places import Gazetteer
from alim.text import STOP_STEMS, content_stems, fold, stems
from alim.understanding import GENERAL_CROPS, Understanding, bundled_lexicon, foreign_topics
from graphs.context import Context, context_of
from graphs.messages import last_user_text
from graphs.state import Chunk, State

DENSE_LOW = 0.02
DENSE_HIGH = 0.07
COVERAGE_PREFIX = 5
"""Letters of a word that coverage compares: one fewer than the search's stems, since a
farmer's word and the article's often part at the sixth ("cərgələr" and "cərgəaraları",
"arası" and "arasında", "полива" and "поливе" agree on five). On the eval sets this cut
over-escalation (dev 7 -> 5 / 560) and escalated every uncovered question it did before; four
letters let one uncovered question through."""


def _prefixes(words: set[str] | frozenset[str]) -> frozenset[str]:
    return frozenset(w[:COVERAGE_PREFIX] for w in words)


@lru_cache(maxsize=4096)
def _chunk_stems(title: str, tags: str, text: str) -> frozenset[str]:
    """A chunk's keyword prefixes (chunks recur across turns: computed once each)."""
    return _prefixes(set(stems(f"{title} {tags} {text}")))


def place_stems(place_id: str | None) -> frozenset[str]:
    """The stems of a place's names: the knowledge base speaks of zones, not districts, so a
    district the question names is no word it should cover ("... Saatlıda?")."""
    place = Gazetteer.bundled().get(place_id) if place_id else None
    if place is None:
        return frozenset()
    return frozenset(stems(f"{place.az} {place.en} {place.ru}"))


def confidence_of(
    question: str, chunks: Sequence[Chunk], ignored: frozenset[str] = frozenset()
) -> float:
    """`ignored`: stems that do not count as the question's content (its place's names)."""
    if not chunks:
        return 0.0
    wanted = _prefixes(content_stems(question) - ignored)
    coverage = 0.0
    if wanted:
        coverage = max(
            len(wanted & _chunk_stems(c["title"], c.get("tags", ""), c["text"])) / len(wanted)
            for c in chunks
        )
    best = max(c.get("relevance", 0.0) for c in chunks)
    dense = min(max((best - DENSE_LOW) / (DENSE_HIGH - DENSE_LOW), 0.0), 1.0)
    top_group = chunks[0].get("group")
    consistency = sum(c.get("group") == top_group for c in chunks) / len(chunks)
    return round(0.5 * coverage + 0.3 * dense + 0.2 * consistency, 3)


_INNER_NAME = re.compile(r"(?<=[^\W_])[\s,;:(«»\"'“”„–—-]+([^\W\d_][^\W\d_]+)")
"""A word inside a sentence (after a word and spaces or light marks, not after a full stop)."""


def unknown_names(question: str, chunks: Sequence[Chunk], ignored: frozenset[str]) -> list[str]:
    """Capitalised words inside the question's sentences that no retrieved chunk holds: the
    varieties it names ("Gala sortu, yoxsa Qızıl Əhmədi?", "Хиакуме или Королёк?"). A name the
    knowledge base holds brings its chunks up (`KnowledgeIndex._named`), so one missing from
    them is missing from the base. `ignored`: the stems of the place the question names."""
    held: set[str] = set()
    for c in chunks:
        held |= _chunk_stems(c["title"], c.get("tags", ""), c["text"])
    found = []
    for match in _INNER_NAME.finditer(question):
        word = match.group(1)
        if not word[0].isupper() or word.isupper():
            continue
        key = fold(word)[:6]
        if key in STOP_STEMS or key in ignored or key[:COVERAGE_PREFIX] in held:
            continue
        found.append(word)
    return found


CROP_ASPECTS = ("propagation", "cracking")
"""Kinds of question the articles answer for some crops only: figs and pomegranates from
cuttings, the nursery's apple rootstocks, grafted walnuts, not lemons, tea or hazelnuts; fruit
that cracks on pomegranates, tomatoes, figs, cherries and melons, not on mandarins."""


def unanswered_aspect(understanding: Understanding, chunks: Sequence[Chunk]) -> str | None:
    """The kind of question (`CROP_ASPECTS`) this one asks of its crops that no retrieved chunk
    on them answers: no chunk of the crops' own articles, nor one whose title or tags name
    them, holds the kind's cue ("limon ağacını qələmlə necə çoxaldım?": the citrus article
    says nothing of cuttings, the nursery's cuttings are apple scions)."""
    asked = [k for k in CROP_ASPECTS if k in understanding.kinds]
    crops = [c for c in understanding.crops if c not in GENERAL_CROPS]
    if not asked or not crops:
        return None
    lexicon = bundled_lexicon()
    groups = {g for c in crops for g in lexicon.crop_groups.get(c, ())}
    named = [lexicon.crops[c] for c in crops if c in lexicon.crops]
    on_crops = [
        c
        for c in chunks
        if c.get("group") in groups
        or any(p.search(fold(f"{c['title']} {c.get('tags', '')}")) for p in named)
    ]
    for kind in asked:
        cue = lexicon.cues.get(kind)
        if cue is not None and not any(cue.search(c["text"]) for c in on_crops):
            return kind
    return None


def signs_in(text: str) -> frozenset[str]:
    """The signs (lexicon `signs`) a text names."""
    return bundled_lexicon().signs_in(fold(text))


@lru_cache(maxsize=4096)
def _chunk_signs(title: str, tags: str, text: str) -> frozenset[str]:
    return signs_in(f"{title} {tags} {text}")


def unseen_signs(understanding: Understanding, question: str, chunks: Sequence[Chunk]) -> list[str]:
    """The signs a question asking what ails its crop describes, when no retrieved chunk on
    that crop, nor a general one, holds any of them: "long grey cigar-shaped spots on maize
    leaves" when no passage speaks of elongated spots, "ягоды засыхают в чёрные мумии" when
    none of mummies. One sign held is enough to answer: a farmer who sees swellings full of
    "black powder like soot" is told of smut's swellings and powder, not of soot. The articles
    of crops the question does not name do not count (`foreign_topics`)."""
    if "diagnosis" not in understanding.kinds or not any(
        c not in GENERAL_CROPS for c in understanding.crops
    ):
        return []
    asked = signs_in(question)
    if not asked:
        return []
    foreign = foreign_topics(understanding)
    held: set[str] = set()
    for c in chunks:
        if c.get("group") not in foreign:
            held |= _chunk_signs(c["title"], c.get("tags", ""), c["text"])
    return [] if asked & held else sorted(asked)


async def assess(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    route = state.get("route")
    if route == "weather":
        return {"confidence": 0.9 if state.get("forecast") else 0.5}
    if state.get("needs_question"):
        return {"confidence": 1.0}
    understanding = Understanding.from_dict(state.get("understanding"))
    # A follow-up is judged with what it searched for ("Hamısını birdən verim?" after a
    # question on nitrogen for maize), not its few words alone.
    question = state.get("query") or last_user_text(state["messages"])
    place = place_stems(understanding.place if understanding is not None else None)
    chunks = state.get("chunks") or []
    confidence = confidence_of(question, chunks, place)
    if understanding is not None and understanding.uncovered:
        # Livestock, silkworms, bees, machinery, prices, subsidies, loans, legal questions:
        # the knowledge base does not cover them, whatever passages share their words.
        confidence = 0.0
    elif (
        understanding is not None
        and "variety" in understanding.kinds
        and unknown_names(last_user_text(state["messages"]), chunks, place)
    ):
        # Which of two named varieties to plant, when the knowledge base names neither: the
        # articles' general advice on varieties does not answer it.
        confidence = 0.0
    elif understanding is not None and unanswered_aspect(understanding, chunks):
        # How to root lemon cuttings: the citrus article's care does not answer it.
        confidence = 0.0
    elif understanding is not None and unseen_signs(
        understanding, last_user_text(state["messages"]), chunks
    ):
        # Cigar-shaped spots on maize leaves: the maize article's diseases look otherwise.
        confidence = 0.0
    if confidence < context_of(runtime).escalation_threshold:
        return {
            "confidence": confidence,
            "escalated": True,
            "escalation_reason": "low_confidence",
        }
    return {"confidence": confidence}
