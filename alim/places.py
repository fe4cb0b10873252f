"""A gazetteer of Azerbaijani districts and cities, matched in az / en / ru text.

Names are compared folded (ə→e, ş→s, …) and Azerbaijani / Russian case endings are allowed after a
name ("Qubada", "Şəkiyə", "Lənkəranın", "в Губе"), from a closed list so that "şəkil" is not Şəki.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from alim.text import words

_SUFFIXES = frozenset(
    "a e ya ye da de ta te dan den tan ten in un nin nun yin yun daki deki "
    "taki teki li lu lar ler y u е у а ом ой и ы ю я е".split()
) | {""}


@dataclass(frozen=True)
class Place:
    id: str
    az: str
    en: str
    ru: str
    lat: float
    lon: float
    region: str = ""
    zone: str = ""
    """lowland | foothill | mountain: the district's main farming zone."""

    def name(self, language: str) -> str:
        return {"az": self.az, "ru": self.ru}.get(language, self.en)


class Gazetteer:
    def __init__(self, places: list[Place], names: dict[str, list[str]]):
        self.places = {p.id: p for p in places}
        self._entries: list[tuple[tuple[str, ...], Place]] = []
        for p in places:
            for name in {p.az, p.en, p.ru, *names.get(p.id, [])}:
                tokens = tuple(words(name))
                if tokens and len("".join(tokens)) >= 3:
                    self._entries.append((tokens, p))
        # Longest names first, so "Şəki-Zaqatala" style names win over their parts.
        self._entries.sort(key=lambda e: -len(e[0]))
        # Entries by the first two letters of their first word: a name can only match where a
        # word of the text starts with those letters (exact words, or the name with an ending).
        self._by_prefix: dict[str, list[int]] = {}
        for i, (tokens, _) in enumerate(self._entries):
            self._by_prefix.setdefault(tokens[0][:2], []).append(i)

    @classmethod
    def bundled(cls) -> Gazetteer:
        return _bundled()

    def get(self, key: str) -> Place | None:
        """A place by id or by any of its names."""
        return self.places.get(key) or self.find(key)

    def find(self, text: str) -> Place | None:
        """The first place named in a text, or None."""
        tokens = words(text)
        best: tuple[int, int, Place] | None = None  # (position, -length, place)
        candidates = sorted({i for t in tokens for i in self._by_prefix.get(t[:2], ())})
        for name, place in (self._entries[i] for i in candidates):
            n = len(name)
            for pos in range(len(tokens) - n + 1):
                if tokens[pos : pos + n - 1] != list(name[:-1]):
                    continue
                last = tokens[pos + n - 1]
                if _inflected(last, name[-1]):
                    candidate = (pos, -n, place)
                    if best is None or candidate[:2] < best[:2]:
                        best = candidate
                    break
        return best[2] if best else None


_RU_STEM_ENDINGS = frozenset("а я ь".split())
_RU_CASE_ENDINGS = frozenset("е у ы и ой ою ей ю".split())


def _inflected(word: str, name: str) -> bool:
    """`word` is `name` with an allowed ending: Azerbaijani / Russian suffixes after the name,
    or, for Russian names in -а/-я/-ь, a case ending in its place ("Губа" → "в Губе",
    "Ленкорань" → "в Ленкорани")."""
    if word.startswith(name) and word[len(name) :] in _SUFFIXES:
        return True
    if name[-1:] in _RU_STEM_ENDINGS and len(name) > 3:
        stem = name[:-1]
        return word.startswith(stem) and word[len(stem) :] in _RU_CASE_ENDINGS
    return False


@lru_cache(maxsize=1)
def _bundled() -> Gazetteer:
    raw = json.loads((resources.files("alim") / "data" / "places.json").read_text(encoding="utf-8"))
    places = [
        Place(
            id=r["id"],
            az=r["az"],
            en=r["en"],
            ru=r["ru"],
            lat=float(r["lat"]),
            lon=float(r["lon"]),
            region=r.get("region", ""),
            zone=r.get("zone", ""),
        )
        for r in raw
    ]
    return Gazetteer(places, {r["id"]: list(r.get("aliases", [])) for r in raw})
