"""What a farmer's question is about, per turn, in az/en/ru: the crop, the kind of question
(timing, amount, temperature, diagnosis, storage, variety, how-to), the agro-climatic zone, the
growth stage, and topics the knowledge base does not cover (livestock, bees, machinery, prices,
subsidies, insurance, loans, legal and export questions).

Lexicons live in `alim/data/lexicon.json`; terms are matched as word prefixes on folded text,
which covers Azerbaijani and Russian case endings ("buğdanı", "картофель", "в горах").
A follow-up that leaves things out ("Bəs arpanı?", "А в горах?", "How warm should the soil be?")
inherits them from the previous turn (`Understanding.following`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

from alim.text import fold, words


def _pattern(terms: list[str]) -> re.Pattern[str] | None:
    parts = []
    for term in terms:
        whole = term.endswith("=")
        text = re.escape(fold(term.removesuffix("=")))
        parts.append(text + (r"(?!\w)" if whole else ""))
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(parts) + ")")


@dataclass(frozen=True)
class Lexicon:
    crops: dict[str, re.Pattern[str]]
    crop_groups: dict[str, tuple[str, ...]]
    kinds: dict[str, re.Pattern[str]]
    zones: dict[str, re.Pattern[str]]
    stages: dict[str, re.Pattern[str]]
    uncovered: dict[str, re.Pattern[str]]
    followup: re.Pattern[str]
    followup_max_words: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lexicon:
        def table(section: dict[str, list[str]]) -> dict[str, re.Pattern[str]]:
            return {k: p for k, v in section.items() if (p := _pattern(v)) is not None}

        crops = data["crops"]
        followup = _pattern(data["followup"]["markers"])
        assert followup is not None
        return cls(
            crops={k: p for k, v in crops.items() if (p := _pattern(v["terms"])) is not None},
            crop_groups={k: tuple(v["groups"]) for k, v in crops.items()},
            kinds=table(data["kinds"]),
            zones=table(data["zones"]),
            stages=table(data["stages"]),
            uncovered=table(data["uncovered"]),
            followup=followup,
            followup_max_words=int(data["followup"]["max_words"]),
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
    groups: tuple[str, ...] = ()
    """Knowledge-base topics (article groups) that cover the crops."""
    kinds: tuple[str, ...] = ()
    zone: str | None = None
    """lowland | foothill | mountain (named in the question, or the place's zone)."""
    place: str | None = None
    """A gazetteer place id, when the question names one."""
    stages: tuple[str, ...] = ()
    uncovered: tuple[str, ...] = ()
    """Topics the knowledge base does not cover."""
    followup: bool = False
    """The question leaves out what an earlier turn said and inherited it."""
    inherited: tuple[str, ...] = ()
    """Which fields came from the earlier turn."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Understanding | None:
        if not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("crops", "groups", "kinds", "stages", "uncovered", "inherited"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

    def following(self, previous: Understanding | None, text: str) -> Understanding:
        """This turn, completed from the previous one when it is an elliptical follow-up."""
        if previous is None or not (previous.crops or previous.kinds):
            return self
        lexicon = bundled_lexicon()
        folded = fold(text)
        short = len(words(text)) <= lexicon.followup_max_words
        marked = bool(lexicon.followup.match(folded.strip()))
        missing_crop = not self.crops and bool(previous.crops)
        missing_kind = not (set(self.kinds) - {"howto"}) and bool(previous.kinds)
        if not (short or marked) or not (missing_crop or missing_kind) or self.uncovered:
            return self
        inherited: list[str] = []
        changes: dict[str, Any] = {"followup": True}
        if missing_crop:
            changes.update(crops=previous.crops, groups=previous.groups)
            inherited.append("crops")
        if missing_kind:
            changes["kinds"] = previous.kinds
            inherited.append("kinds")
        if self.zone is None and previous.zone is not None:
            changes["zone"] = previous.zone
            inherited.append("zone")
        if not self.stages and previous.stages:
            changes["stages"] = previous.stages
        changes["inherited"] = tuple(inherited)
        return replace(self, **changes)


def understand(text: str, *, place: str | None = None, zone: str | None = None) -> Understanding:
    """Read one message. `place`/`zone`: what the gazetteer found in it, if anything."""
    lexicon = bundled_lexicon()
    folded = fold(text)
    crops = _found(lexicon.crops, folded)
    groups: list[str] = []
    for crop in crops:
        groups.extend(g for g in lexicon.crop_groups[crop] if g not in groups)
    zones = _found(lexicon.zones, folded)
    return Understanding(
        crops=crops,
        groups=tuple(groups),
        kinds=_found(lexicon.kinds, folded),
        zone=zones[0] if zones else zone,
        place=place,
        stages=_found(lexicon.stages, folded),
        uncovered=() if crops else _found(lexicon.uncovered, folded),
    )


def without_crops(text: str) -> str:
    """The text with the words that name a crop removed (for condensing a follow-up)."""
    lexicon = bundled_lexicon()
    kept = [w for w in text.split() if not any(p.match(fold(w)) for p in lexicon.crops.values())]
    return " ".join(kept)
