"""What a farmer's question is about, per turn, in az/en/ru: the crop, the kind of question
(timing, amount, seed rate, temperature, diagnosis, storage, variety, how-to), the agro-climatic
zone, the growth stage, and topics the knowledge base does not cover (livestock and poultry,
silkworms, mushrooms and snails, bees, crops and pests no article names, making food or pressing
oil at home, a person's health, solar panels and biogas, machinery, prices, subsidies,
insurance, loans, legal, certification and export questions).

Lexicons live in `alim/data/lexicon.json`; terms are matched as word prefixes on folded text,
which covers Azerbaijani and Russian case endings ("buğdanı", "картофель", "в горах").
A follow-up that leaves things out ("Bəs arpanı?", "А в горах?", "How warm should the soil be?")
inherits them from the previous turn (`Understanding.following`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from alim.text import fold, words

OTHER_CROPS = "other_crops"
"""The uncovered topic of a question about a crop no article covers (`Lexicon.other_crops_in`)."""

GENERAL_CROPS = frozenset({"seedlings"})
"""Lexicon crops that name a stage of growing, not a crop of their own."""

_SOFTENED = {"q": "(?:q|g)", "k": "(?:k|y)"}
"""Azerbaijani final q/k soften before a vowel suffix: fındıq → fındığı, ərik → əriyi (folded:
findiq → findigi, erik → eriyi)."""


_TYPED = {"c": "(?:c|ch)", "s": "(?:s|sh)", "g": "(?:g|gh)"}
"""Azerbaijani ç, ş and ğ as phones often type them, two Latin letters ("necheyedi",
"shaxta"); folded, they are c, s and g."""


def _folded_regex(term: str) -> str:
    """A term's folded letters as a regex, its ç, ş and ğ also as typed (`_TYPED`)."""
    out = []
    for letter in term:
        folded = fold(letter)
        typed = _TYPED.get(folded) if folded != letter.lower() else None
        out.append(typed or re.escape(folded))
    return "".join(out)


def terms_pattern(terms: list[str]) -> re.Pattern[str] | None:
    """One regex for a list of lexicon terms, matched on folded text at a word's start: each
    term is a word's beginning ("suvar" for suvarma, suvarın), or a whole word when it ends
    with "=" ("raisin="); None for no terms."""
    parts = []
    for term in terms:
        whole = term.endswith("=")
        written = term.removesuffix("=")
        folded = fold(written)
        if folded[-1:] in _SOFTENED:
            text = _folded_regex(written[:-1]) + _SOFTENED[folded[-1]]
        else:
            text = _folded_regex(written)
        parts.append(text + (r"(?!\w)" if whole else ""))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")")


def _written(terms: list[str]) -> re.Pattern[str]:
    """The terms as written (not folded), each at a word start, for an article's sentences."""
    parts = [re.escape(t.removesuffix("=")) + (r"(?!\w)" if t.endswith("=") else "") for t in terms]
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")", re.IGNORECASE)


@dataclass(frozen=True)
class Lexicon:
    crops: dict[str, re.Pattern[str]]
    crop_groups: dict[str, tuple[str, ...]]
    members: dict[str, re.Pattern[str]]
    """"crop:member" -> the words for one plant of a crop that has several in one article
    (citrus: mandarin, lemon, feijoa)."""
    generic_crops: dict[str, re.Pattern[str]]
    """Crop -> words that name it only when no other crop is named: "grain" and "зерно" are
    wheat in "зерно сыроватое, как просушить?", not in "кукуруза на зерно" or "grain maize"."""
    practices: dict[str, re.Pattern[str]]
    """Farm practices (spraying) whose topics a question reads, whatever the crop."""
    practice_groups: dict[str, tuple[str, ...]]
    subjects: dict[str, re.Pattern[str]]
    """What a question is about besides its crop (fertilising, salinity); their topics are
    read (`topics_read`), first when no crop is named or a follow-up keeps them."""
    subject_groups: dict[str, tuple[str, ...]]
    named_subjects: frozenset[str]
    """Subjects that are a pest or disease by name: their topic is read unless the question
    names a crop whose own article names them (`topics_read`'s `names`). They never steer
    retrieval (`steering`): without a crop, the pest's crops' articles (codling moth: the apple
    article) may answer better than the general one, which then comes second."""
    kinds: dict[str, re.Pattern[str]]
    zones: dict[str, re.Pattern[str]]
    zone_cues: dict[str, re.Pattern[str]]
    """Zone -> its terms as written (not folded), to find in an article's sentences."""
    stage_cues: dict[str, re.Pattern[str]]
    """Growth stage -> its terms as written, to find in an article's sentences: the sentence
    on lifting onions answers "when do I harvest onions?", the sowing dates do not."""
    stages: dict[str, re.Pattern[str]]
    subject_cues: dict[str, re.Pattern[str]]
    """Pest or disease by name -> its terms as written, to find in an article's sentences: the
    sentence that names the aphids answers "Как бороться с тлёй?", whatever its case ending."""
    uncovered: dict[str, re.Pattern[str]]
    uncovered_with_crop: dict[str, re.Pattern[str]]
    """Uncovered topics that stay uncovered when a crop is named (the price of wheat), by
    narrower terms, or by all of their terms for the topics the lexicon lists as `whole`."""
    uncovered_asking: dict[str, re.Pattern[str]]
    """Uncovered topic -> what a question asks of it that keeps it uncovered with a crop named,
    together with any of the topic's own terms: a cow's hay a day, sheep per hectare of
    stubble, what to give a goat that ate alfalfa (the animal's care, not the crop's)."""
    covered_when: dict[str, re.Pattern[str]]
    """Uncovered topic -> the spraying words that make the question a covered one (bees while
    spraying): one list for every such topic."""
    still_uncovered: re.Pattern[str] | None
    """Terms that keep a topic uncovered whatever spraying words come with them (varroa)."""
    cues: dict[str, re.Pattern[str]]
    """Kind of question -> what a sentence answering it holds (a month, a rate, a °C)."""
    followup: re.Pattern[str]
    followup_max_words: int
    pronouns: re.Pattern[str] | None = None
    """Words that refer back to an earlier turn's crop ("them", "их", "onları")."""
    plural_pronouns: re.Pattern[str] | None = None
    """Those of `pronouns` that stand for several things: plants, never drought or drip."""
    relative: re.Pattern[str] | None = None
    """Words placing a turn before or after the previous one's subject ("перед этим")."""
    other_crops: re.Pattern[str] | None = None
    """Crops no article covers (strawberries, saffron): see `other_crops_in`."""
    compound_crops: re.Pattern[str] | None = None
    """Those of `other_crops` whose name holds a covered crop's word ("цветная капуста",
    "sweet potato", "şəkər qarğıdalısı"): the covered crop is not read in them."""
    topic_rules: tuple[tuple[frozenset[str], frozenset[str], tuple[str, ...]], ...] = ()
    """(kinds, stages, groups): a question of one of the kinds (if any) and one of the stages
    (if any) also reads those topics (when to sow: the sowing calendar)."""
    signs: dict[str, re.Pattern[str]] = field(default_factory=dict)
    """Sign -> its words: what a farmer sees that tells problems apart (rings, gum, mummies);
    see graphs.nodes.assess.unseen_signs."""

    def uncovered_in(self, folded: str, *, with_crop: bool) -> tuple[str, ...]:
        """The uncovered topics a folded text asks about; `with_crop`: the question, or the
        conversation it goes on, names a crop (only `uncovered_with_crop` topics then count:
        "убирать комбайном" about maize is a harvest question)."""
        table = self.uncovered_with_crop if with_crop else self.uncovered
        found = _found(table, folded)
        if with_crop:
            found += tuple(
                topic
                for topic, asks in self.uncovered_asking.items()
                if topic not in found
                and asks.search(folded)
                and self.uncovered[topic].search(folded)
            )
        return tuple(
            topic
            for topic in found
            if not (
                (covered := self.covered_when.get(topic))
                and covered.search(folded)
                and not (self.still_uncovered and self.still_uncovered.search(folded))
            )
        )

    def other_crops_in(
        self, folded: str, crops: tuple[str, ...], subjects: tuple[str, ...]
    ) -> tuple[str, ...]:
        """`(OTHER_CROPS,)` when a folded text names a crop no article covers and none that one
        does (raspberries, not raspberries between apple trees), nor a pest or disease the
        general articles describe by name (aphids on strawberries); else `()`. Seedlings are
        how a crop starts, not a crop of their own ("çiyələk şitili" is strawberries)."""
        if self.other_crops is None or any(s in self.named_subjects for s in subjects):
            return ()
        if any(crop not in GENERAL_CROPS for crop in crops):
            return ()
        return (OTHER_CROPS,) if self.other_crops.search(folded) else ()

    def signs_in(self, folded: str) -> frozenset[str]:
        """The signs (`signs`) a folded text names."""
        return frozenset(_found(self.signs, folded))

    def steering(self, subjects: tuple[str, ...]) -> tuple[str, ...]:
        """The subjects whose topics steer retrieval (a question's `groups`): not those by name."""
        return tuple(s for s in subjects if s not in self.named_subjects)

    def groups_for(
        self,
        crops: tuple[str, ...],
        kinds: tuple[str, ...],
        stages: tuple[str, ...],
        practices: tuple[str, ...] = (),
        subjects: tuple[str, ...] = (),
    ) -> tuple[str, ...]:
        """The topics a question reads: those of the subjects it keeps from earlier turns
        first, then its crops', its practices', then those of the topic rules."""
        groups: list[str] = []
        for subject in subjects:
            groups.extend(g for g in self.subject_groups[subject] if g not in groups)
        for crop in crops:
            groups.extend(g for g in self.crop_groups[crop] if g not in groups)
        for practice in practices:
            groups.extend(g for g in self.practice_groups[practice] if g not in groups)
        for rule_kinds, rule_stages, rule_groups in self.topic_rules:
            if (not rule_kinds or rule_kinds & set(kinds)) and (
                not rule_stages or rule_stages & set(stages)
            ):
                groups.extend(g for g in rule_groups if g not in groups)
        return tuple(groups)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lexicon:
        def table(section: dict[str, list[str]]) -> dict[str, re.Pattern[str]]:
            return {k: p for k, v in section.items() if (p := terms_pattern(v)) is not None}

        with_crop = data["uncovered_with_crop"]
        unknown = {*with_crop.get("whole", ()), *with_crop.get("asking", {})} - set(
            data["uncovered"]
        )
        if unknown:  # found when the lexicon loads, not when a question first reaches one
            raise ValueError(
                f"uncovered_with_crop names topics missing from uncovered: {sorted(unknown)}"
            )
        crops = data["crops"]
        crop_patterns = {
            k: p for k, v in crops.items() if (p := terms_pattern(v["terms"])) is not None
        }
        other_crops = data.get("uncovered_crops", {}).get("terms", [])
        practices = {k: v for k, v in data.get("practices", {}).items() if not k.startswith("_")}
        subjects = {k: v for k, v in data.get("subjects", {}).items() if not k.startswith("_")}
        followup = terms_pattern(data["followup"]["markers"])
        assert followup is not None
        covered = data.get("covered_when", {})
        spraying = terms_pattern(covered.get("terms", []))
        return cls(
            crops=crop_patterns,
            crop_groups={k: tuple(v["groups"]) for k, v in crops.items()},
            members={
                f"{crop}:{member}": p
                for crop, v in crops.items()
                for member, terms in v.get("members", {}).items()
                if (p := terms_pattern(terms)) is not None
            },
            generic_crops={
                k: p
                for k, v in crops.items()
                if (p := terms_pattern(v.get("generic", []))) is not None
            },
            practices={
                k: p for k, v in practices.items() if (p := terms_pattern(v["terms"])) is not None
            },
            practice_groups={k: tuple(v["groups"]) for k, v in practices.items()},
            subjects={
                k: p for k, v in subjects.items() if (p := terms_pattern(v["terms"])) is not None
            },
            subject_groups={k: tuple(v["groups"]) for k, v in subjects.items()},
            named_subjects=frozenset(k for k, v in subjects.items() if v.get("named")),
            kinds=table(data["kinds"]),
            zones=table(data["zones"]),
            zone_cues={zone: _written(terms) for zone, terms in data["zones"].items()},
            stages=table(data["stages"]),
            stage_cues={
                stage: _written(terms)
                for stage, terms in data.get("stage_cues", {}).items()
                if not stage.startswith("_")
            },
            subject_cues={k: _written(v["terms"]) for k, v in subjects.items() if v.get("named")},
            uncovered=table(data["uncovered"]),
            uncovered_with_crop=table(
                {
                    k: v
                    for k, v in data["uncovered_with_crop"].items()
                    if not k.startswith("_") and k not in ("whole", "asking")
                }
                | {k: data["uncovered"][k] for k in data["uncovered_with_crop"].get("whole", ())}
            ),
            uncovered_asking=table(data["uncovered_with_crop"].get("asking", {})),
            covered_when={topic: spraying for topic in covered.get("topics", ()) if spraying},
            still_uncovered=terms_pattern(covered.get("still_uncovered", [])),
            other_crops=terms_pattern(other_crops),
            compound_crops=terms_pattern(
                [
                    term
                    for term in other_crops
                    if any(p.search(fold(term.removesuffix("="))) for p in crop_patterns.values())
                ]
            ),
            cues={
                k: re.compile(v, re.IGNORECASE)
                for k, v in data.get("cues", {}).items()
                if not k.startswith("_")
            },
            followup=followup,
            followup_max_words=int(data["followup"]["max_words"]),
            pronouns=terms_pattern(data["followup"].get("pronouns", [])),
            plural_pronouns=terms_pattern(data["followup"].get("plural_pronouns", [])),
            relative=terms_pattern(data["followup"].get("relative", [])),
            signs=table({k: v for k, v in data.get("signs", {}).items() if not k.startswith("_")}),
            topic_rules=tuple(
                (
                    frozenset(rule.get("kinds", ())),
                    frozenset(rule.get("stages", ())),
                    tuple(rule["groups"]),
                )
                for rule in data.get("topic_rules", {}).get("rules", [])
            ),
        )


@cache
def bundled_lexicon() -> Lexicon:
    """The bundled lexicon, read once on first use (never at import)."""
    path = resources.files("alim") / "data" / "lexicon.json"
    return Lexicon.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _found(table: dict[str, re.Pattern[str]], folded: str) -> tuple[str, ...]:
    return tuple(name for name, pattern in table.items() if pattern.search(folded))


@dataclass(frozen=True)
class Understanding:
    crops: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    """The plants of its crops the question names ("citrus:mandarin"), where a crop has several."""
    groups: tuple[str, ...] = ()
    """Knowledge-base topics (article groups) the question reads: those covering its crops,
    then those its kind of question reads (`Lexicon.topic_rules`)."""
    kinds: tuple[str, ...] = ()
    zone: str | None = None
    """lowland | foothill | mountain (named in the question, or the place's zone)."""
    place: str | None = None
    """A gazetteer place id, when the question names one."""
    stages: tuple[str, ...] = ()
    practices: tuple[str, ...] = ()
    """Farm practices the question is about (spraying)."""
    subjects: tuple[str, ...] = ()
    """What it is about besides the crop (fertilising, salinity, frost)."""
    kept_subjects: tuple[str, ...] = ()
    """Subjects kept from earlier turns by a follow-up; their topics are read."""
    topic: str | None = None
    """The topic (article group) the answer led with; set by retrieval."""
    kept_topic: str | None = None
    """The previous answer's topic, kept by a follow-up when it is not its crops' own (the
    sowing calendar, the greenhouse article): read first."""
    uncovered: tuple[str, ...] = ()
    """Topics the knowledge base does not cover."""
    followup: bool = False
    """The question leaves out what an earlier turn said and inherited it."""
    inherited: tuple[str, ...] = ()
    """Which fields came from the earlier turn."""

    def as_dict(self) -> dict[str, Any]:
        # Shallow: the fields are strings and tuples of strings (asdict would rebuild each).
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Understanding | None:
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in (
            "crops",
            "members",
            "groups",
            "kinds",
            "stages",
            "practices",
            "subjects",
            "kept_subjects",
            "uncovered",
            "inherited",
        ):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def following(
        self, previous: Understanding | None, text: str, *, goes_on: bool = False
    ) -> Understanding:
        """This turn, completed from the previous one when it is an elliptical follow-up: it
        leaves out the crop or the kind of question, or names neither a crop nor a subject of
        its own after a turn that had one ("Nə vaxt səpim?" after a liming question).
        `goes_on`: the conversation is known to go on (graphs.nodes.route): whatever its
        length or wording, the turn inherits what it leaves out."""
        if previous is None or not (previous.crops or previous.kinds or previous.subjects):
            return self
        lexicon = bundled_lexicon()
        folded = fold(text)
        if self.uncovered and not self.crops and previous.crops:
            # In a conversation about a crop, a turn is read as naming it: "а при какой
            # влажности убирать комбайном?" after a maize question is about harvesting maize.
            # A crop no article covers stays its own: "а малину?" after apples is not apples.
            uncovered = lexicon.uncovered_in(folded, with_crop=True) + tuple(
                t for t in self.uncovered if t == OTHER_CROPS
            )
            if uncovered != self.uncovered:
                return replace(self, uncovered=uncovered).following(previous, text, goes_on=goes_on)
        short = len(words(text)) <= lexicon.followup_max_words
        marked = bool(lexicon.followup.match(folded.strip()))
        # A word for any grain names no crop of its own in a conversation about one: "What
        # moisture should the grain be at?" after a question on maize is about the maize. Nor
        # do seedlings: "how old should the seedlings be?" after rice are the rice seedlings.
        crops = self.crops if _found(lexicon.crops, folded) or not previous.crops else ()
        if set(crops) <= GENERAL_CROPS and set(previous.crops) - GENERAL_CROPS:
            crops = ()
        missing_crop = not crops and bool(previous.crops)
        missing_kind = not (set(self.kinds) - {"howto"}) and bool(previous.kinds)
        # Storing the harvest is a subject of its own: "anbarda neçə dərəcədə saxlayım?" after a
        # question on fertilising apples is about the store, not the fertiliser.
        stores = "storage" in self.kinds and "storage" not in previous.kinds
        missing_subject = (
            not self.subjects and not self.practices and bool(previous.subjects) and not stores
        )
        elliptical = missing_crop or missing_kind or (missing_subject and not crops)
        # "How long do fresh ones keep?" after a question on figs refers back to the figs. A
        # singular one may stand for a subject named before it: "Что такое капельное орошение
        # и сколько оно экономит воды?" is about drip irrigation; "Yayda quraqlıq olanda onları
        # neçə vaxtdan bir suvarım?" still waters the lemon trees.
        pronoun = lexicon.pronouns.search(folded) if lexicon.pronouns is not None else None
        plural = lexicon.plural_pronouns is not None and bool(
            lexicon.plural_pronouns.search(folded)
        )
        refers = (
            missing_crop
            and pronoun is not None
            and (
                plural
                or not any(
                    pattern.search(folded[: pronoun.start()]) is not None
                    for pattern in (
                        *(lexicon.subjects[s] for s in self.subjects),
                        *(lexicon.practices[p] for p in self.practices),
                    )
                )
            )
        )
        # A turn naming no crop, and no subject the conversation has not named already, has
        # nothing else to be about: "at what moisture should the combine go in?" after a
        # question on harvesting rice; "At what count per square metre should I spray?" after
        # one on the sunn pest in wheat (a practice is done to something: spraying names no
        # crop of its own, and its topic is read all the same).
        earlier = {*previous.subjects, *previous.kept_subjects}
        bare = not crops and set(self.subjects) <= earlier
        # "Bəs qovunu?" after a spacing question on watermelons is a follow-up, whatever the
        # lexicon finds missing: the marker says so.
        if self.uncovered or not (
            ((short or marked or refers or goes_on or bare) and elliptical) or (short and marked)
        ):
            return self
        inherited: list[str] = []
        changes: dict[str, Any] = {"followup": True}
        if missing_crop:
            general = (c for c in self.crops if c in GENERAL_CROPS and c not in previous.crops)
            changes["crops"] = (*previous.crops, *general)
            changes["members"] = previous.members
            inherited.append("crops")
        if missing_kind:
            changes["kinds"] = previous.kinds
            inherited.append("kinds")
        if missing_subject:
            changes["subjects"] = previous.subjects
            inherited.append("subjects")
        if self.zone is None and previous.zone is not None:
            changes["zone"] = previous.zone
            inherited.append("zone")
        if self.place is None and previous.place is not None:
            changes["place"] = previous.place
        if (
            not self.stages
            and previous.stages
            and (not set(self.kinds) - {"howto"} or not set(self.subjects) - earlier)
        ):
            # The stage goes on with the conversation, unless the turn asks a kind of question
            # of its own about a subject of its own: "а какой мороз она выдерживает?" after
            # "хочу посадить маслину" asks for a temperature of frost, not about planting ("а
            # на ночь обещают заморозок, чем спасать?" after planting out seedlings still
            # saves the seedlings just planted).
            changes["stages"] = previous.stages
        changes["inherited"] = tuple(inherited)
        changes["kept_subjects"] = changes.get("subjects", ())
        if (
            not changes["kept_subjects"]
            and lexicon.relative is not None
            and lexicon.relative.search(folded)
        ):
            # "а поливать надо перед этим?" after a frost warning is watering before the
            # frost: the frost's topic is read first, then watering's.
            changes["kept_subjects"] = previous.subjects
        own = {g for crop in previous.crops for g in lexicon.crop_groups.get(crop, ())}
        if previous.topic is not None and previous.topic not in own:
            changes["kept_topic"] = previous.topic
        merged = replace(self, **changes, topic=None)
        groups = lexicon.groups_for(
            merged.crops,
            merged.kinds,
            merged.stages,
            merged.practices,
            lexicon.steering(merged.kept_subjects),
        )
        if merged.kept_topic is not None:
            groups = (merged.kept_topic, *(g for g in groups if g != merged.kept_topic))
        return replace(merged, groups=groups)


_OPENS_WHEN_RIPE = re.compile(r"(?<!\w)(?:boll|hull|husk|qoza|qabi[gq]|коробоч|околоплод|кожур)")
"""What cracks open when ripe, in folded text: a cotton boll, a walnut's or almond's hull."""


def understand(text: str, *, place: str | None = None, zone: str | None = None) -> Understanding:
    """Read one message. `place`/`zone`: what the gazetteer found in it, if anything."""
    lexicon = bundled_lexicon()
    folded = fold(text)
    # "Цветная капуста" is no cabbage, "şirin kartof" no potato: the crops are read without
    # the uncovered crops whose names hold a covered one's word.
    named = lexicon.compound_crops.sub(" ", folded) if lexicon.compound_crops else folded
    crops = _found(lexicon.crops, named)
    if not crops and not (lexicon.other_crops and lexicon.other_crops.search(folded)):
        # A generic word names a crop only when the question names none, not even one the
        # articles do not cover: "озимую рожь на зелёный корм" is rye, not the forage article.
        crops = _found(lexicon.generic_crops, named)
    kinds = _found(lexicon.kinds, folded)
    if "cracking" in kinds and _OPENS_WHEN_RIPE.search(folded):
        # Bolls and hulls crack open when ripe ("bolls are starting to crack open"): a sign to
        # pick or defoliate, not fruit that cracks.
        kinds = tuple(k for k in kinds if k != "cracking")
    if "spacing" in kinds:
        # The room kept between trees is no storage: "ağacların arasını neçə metr saxlayım?"
        kinds = tuple(k for k in kinds if k != "storage")
    stages = _found(lexicon.stages, folded)
    zones = _found(lexicon.zones, folded)
    practices = _found(lexicon.practices, folded)
    subjects = _found(lexicon.subjects, folded)
    return Understanding(
        crops=crops,
        members=_found(lexicon.members, named),
        # Without a crop, the question's subject is what it is about: its topic is read.
        groups=lexicon.groups_for(
            crops,
            kinds,
            stages,
            practices,
            () if crops else lexicon.steering(subjects),
        ),
        kinds=kinds,
        zone=zones[0] if zones else zone,
        place=place,
        stages=stages,
        practices=practices,
        subjects=subjects,
        uncovered=lexicon.uncovered_in(folded, with_crop=bool(crops))
        + lexicon.other_crops_in(folded, crops, subjects),
    )


def answer_cues(understanding: Understanding | None) -> tuple[re.Pattern[str], ...]:
    """What a sentence answering this question holds: by the question's kinds, its zone (for
    "when") and its growth stage. A sentence scores for each cue it holds."""
    if understanding is None:
        return ()
    lexicon = bundled_lexicon()
    found = [lexicon.cues[k] for k in understanding.kinds if k in lexicon.cues]
    subjects = understanding.kept_subjects or understanding.subjects
    if (
        "temperature" in understanding.kinds
        and "frost" in subjects
        and "below_zero" in lexicon.cues
    ):
        # "What frost does olive take?" is answered by a figure below zero.
        found.append(lexicon.cues["below_zero"])
    if "timing" in understanding.kinds and understanding.zone in lexicon.zone_cues:
        # Sowing dates are given per zone: the sentence naming the farmer's zone answers.
        found.append(lexicon.zone_cues[understanding.zone])
    found.extend(lexicon.stage_cues[s] for s in understanding.stages if s in lexicon.stage_cues)
    # The pest or disease the question names: the sentence about it answers, not its neighbours.
    found.extend(lexicon.subject_cues[s] for s in subjects if s in lexicon.subject_cues)
    # Each cue counts once: "how" and "how much" look for the same figures.
    return tuple({c.pattern: c for c in found}.values())


def topics_read(
    understanding: Understanding | None, names: Callable[[str, re.Pattern[str]], bool] | None = None
) -> tuple[str, ...]:
    """The topics this question reads besides its crop's: its kind's (`Lexicon.topic_rules`),
    its practices' and its subjects' (kept from earlier turns, or its own). They come after the
    crop's topic, which an article among them leads only if its sentence answers clearly
    better (graphs.evidence): "Жара под 40, подкормить помидоры азоткой?" is answered by the
    heat article, "Какая кислотность почвы нужна для чая?" by the tea article.
    `names(group, pattern)`: whether the topic's article names what the folded `pattern` finds;
    a pest or disease by name is then left to the crop's own article when it names it. Without
    a crop its topic is read ("Как бороться с тлёй?": the common pests article)."""
    if understanding is None:
        return ()
    lexicon = bundled_lexicon()
    subjects = understanding.kept_subjects or understanding.subjects
    own = [g for c in understanding.crops for g in lexicon.crop_groups.get(c, ())]
    subjects = tuple(
        s
        for s in subjects
        if s not in lexicon.named_subjects
        or not own
        or (names is not None and not any(names(g, lexicon.subjects[s]) for g in own))
    )
    groups = lexicon.groups_for(
        (), understanding.kinds, understanding.stages, understanding.practices, subjects
    )
    kept = understanding.kept_topic
    return groups if kept is None else (kept, *(g for g in groups if g != kept))


def own_topics(understanding: Understanding | None) -> tuple[str, ...]:
    """The first topic of each crop the question names (or a follow-up keeps): the crop's own
    article, which answers about it whatever else retrieval finds."""
    if understanding is None:
        return ()
    crop_groups = bundled_lexicon().crop_groups
    # Seedlings of a crop are that crop's: "rice seedlings" names one crop, not two to compare.
    crops = [c for c in understanding.crops if c not in GENERAL_CROPS] or understanding.crops
    found = (crop_groups.get(c, ())[:1] for c in crops)
    return tuple(dict.fromkeys(g for groups in found for g in groups))


def foreign_topics(understanding: Understanding | None) -> frozenset[str]:
    """The articles of crops the question does not name, when it names one: none of them
    answers it (the wheat article's seed rate for an onion question). Topics shared by
    several crops (greenhouse vegetables, seedlings) are general, never foreign."""
    if understanding is None or not understanding.crops:
        return frozenset()
    crop_groups = bundled_lexicon().crop_groups
    counts = Counter(g for groups in crop_groups.values() for g in groups)
    own = {g for c in understanding.crops for g in crop_groups.get(c, ())}
    return frozenset(g for g, n in counts.items() if n == 1 and g not in own)


def without_crops(text: str) -> str:
    """The text with the words that name a crop removed (for condensing a follow-up)."""
    lexicon = bundled_lexicon()
    patterns = [*lexicon.crops.values(), *lexicon.generic_crops.values()]
    kept = [w for w in text.split() if not any(p.match(fold(w)) for p in patterns)]
    return " ".join(kept)


_LABEL = re.compile(r"^\s*(?:\*\*([^*]{1,60}?):?\*\*|([^.:;*]{1,40}):)")


def labelled_for_others(sentence: str, understanding: Understanding | None) -> bool:
    """Whether a sentence's label names crops and the sentence none the question names: in an
    article of several crops, "**Xiyar, qovun, qarpız:** … 25–30 gün" is no answer about rice
    seedlings; "**Pomidor şitili:** … Bibər və badımcan 1–2 həftə sonra" is one about pepper.
    So is a label naming only plants of the question's crop it does not name ("**Лимон:** …"
    for a question on mandarins, `Understanding.members`)."""
    if understanding is None:
        return False
    asked = [c for c in understanding.crops if c not in GENERAL_CROPS]
    match = _LABEL.match(sentence)
    if not asked or match is None:
        return False
    label = match.group(1) or match.group(2)
    if crops_named(label) and not crops_named(sentence) & set(asked):
        return True
    # "**Lemon:** …" is no answer about mandarins, though both are citrus.
    named = _members_named(label)
    return bool(
        understanding.members
        and named
        and not named & set(understanding.members)
        and not _members_named(sentence) & set(understanding.members)
    )


@lru_cache(maxsize=8192)
def crops_named(text: str) -> frozenset[str]:
    """The lexicon's crops a text names (an article's sentences recur from turn to turn)."""
    return frozenset(_found(bundled_lexicon().crops, fold(text)))


def crop_words(text: str) -> str:
    """The (folded) words of a text that name a crop: "alma" of "Qubada alma bağım var"."""
    patterns = bundled_lexicon().crops.values()
    return " ".join(w for w in words(text) if any(p.match(w) for p in patterns))


@lru_cache(maxsize=8192)
def _members_named(text: str) -> frozenset[str]:
    """The plants of several-plant crops a text names ("citrus:lemon")."""
    return frozenset(_found(bundled_lexicon().members, fold(text)))
