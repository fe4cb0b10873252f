"""Language detection and the text normalisation shared by BM25, the router and the gazetteer.

Farmers type on phones, often without Azerbaijani letters ("suvarma cedveli"), so matching folds
ə→e, ı→i, ö→o, ü→u, ğ→g, ş→s, ç→c. Azerbaijani and Russian are agglutinative / inflected, so
keyword matching compares word prefixes (a light stemmer: the first six letters of a word).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cache
from importlib import resources

from alim.vocab import LANGUAGES, Language

__all__ = [
    "LANGUAGES",
    "Language",
    "content_stems",
    "detect_language",
    "fold",
    "headed_sentences",
    "keywords",
    "query_keywords",
    "sentences",
    "stem",
    "stems",
    "topic_stems",
    "words",
]

_FOLD = str.maketrans(
    {"ə": "e", "ı": "i", "ö": "o", "ü": "u", "ğ": "g", "ş": "s", "ç": "c", "ё": "е"}
)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]", re.IGNORECASE)
_AZ_LETTERS = re.compile(r"[əğışçöüƏĞİŞÇÖÜ]")
# Frequent Azerbaijani words that need no special letter (for text typed without them).
_AZ_WORDS = frozenset(
    "nə ne var yox edim neca necə ucun üçün men mən sen sən biz bu hansi hansı sabah "
    "yagis yağış suvarma suvarmaq torpaq gubre gübrə bag bağ meyve meyvə pambiq pambıq "
    "bugda buğda pomidor kartof alma nar cay çay salam sagol sağol olar olsun mene mənə "
    "lazimdir lazımdır istəyirəm isteyirem ferma fermada fermer sualim sualım haqqinda "
    "haqqında zaman vaxt ve və ile ilə da də".split()
)
_EN_WORDS = frozenset(
    "the what how when should will is are my i to of in for and do does can it this "
    "with rain water soil hi hey hello ok okay thanks please help".split()
)
_NOT_LATIN = re.compile(r"[^a-z]+")
STEM_LENGTH = 6
_STOP_TEXT = (
    "how what when why which should can could do does did is are the my our your i we it this "
    "that for with from into about near per and or not have has need want get "
    "nə necə niyə hansı nece hansi olar olmaq etmək etmeli etməli edim edək lazımdır var yox "
    "üçün ucun ilə ile və ve bu o mən mənim bizim sizin kimi daha çox cox qədər neçə vaxt zaman "
    "olsun olur istəyirəm istəyirik istəyir istərdim "
    "как что чем почему какие какой какая сколько где когда нужно можно надо делать это для "
    "при мой моя мои на в с и не ли "
    "a an of on at by be am was were been so if then than there their them they he she his her "
    "its me us these those who would will just also very too any some all "
    "da də ki amma ancaq yoxsa həm hər heç bir biri belə elə onun onlar onları onu ona mənə "
    "bizə siz sən biz mi mı mu mü bəs "
    "под над из от до по за про без у к о об же бы то так там тут уже ещё еще очень все всё "
    "его её их им ему она они оно он мы вы я ты мне меня нас вам вас свой свои этот эта эти "
    "тот та те который которая которые если чтобы чтоб или а но да нет только тоже также "
    "был была были будет есть быть один одному одна одно хочу хотим хотел хотела хотелось"
)


def fold(text: str) -> str:
    """Lower-case and fold Azerbaijani letters to ASCII look-alikes (Cyrillic is kept)."""
    return text.replace("İ", "i").replace("I", "ı").lower().translate(_FOLD)


def words(text: str) -> list[str]:
    """Folded word tokens."""
    return _WORD.findall(fold(text))


def stem(word: str) -> str:
    return word[:STEM_LENGTH]


def stems(text: str) -> list[str]:
    """Folded, prefix-stemmed tokens: the keyword view of a text (BM25, rules)."""
    return [stem(w) for w in words(text) if len(w) > 1 or w.isdigit()]


def _has_digit(token: str) -> bool:
    return any(map(str.isdigit, token))


def topic_stems(text: str) -> list[str]:
    """`stems` without those holding a digit: in a question, "20 gün", "5 ha" or an order code
    say how much or which, not what about, and match a passage's numbers only by chance."""
    return [t for t in stems(text) if not _has_digit(t)]


def keywords(text: str) -> list[str]:
    """The keyword index's tokens: every stem, and each word longer than a stem whole (marked
    "="), so that names sharing their first letters ("Ağcanabat", "Ağcanar") stay apart while
    case endings still meet on the stem."""
    found = words(text)
    return [stem(w) for w in found if len(w) > 1 or w.isdigit()] + [
        f"={w}" for w in found if len(w) > STEM_LENGTH
    ]


def query_keywords(text: str) -> list[str]:
    """`keywords` of a question, without those holding a digit (see `topic_stems`)."""
    return [k for k in keywords(text) if not _has_digit(k)]


def content_stems(text: str) -> set[str]:
    """Topic stems that carry content (question words and particles removed)."""
    return {t for t in topic_stems(text) if len(t) > 2 and t not in STOP_STEMS}


UNDECIDED_NATS = 5.0
"""Letter-trigram log-odds closer to even than this decide nothing: a few words typed without
Azerbaijani letters and with no listed word ("neche defe?": −3.9) are as much English as not."""


_WORD_TOKEN = re.compile(r"(?<![-‐‑])\b[^\W_]+")


def _names_aside_azerbaijani(text: str) -> bool:
    """Whether a word that is not a name has Azerbaijani letters: a capitalised word after the
    first is taken for a name ("onion tops are flopping near Qəbələ" is English)."""
    for i, match in enumerate(_WORD_TOKEN.finditer(text)):
        word = match.group()
        if _AZ_LETTERS.search(word) and (i == 0 or not word[0].isupper()):
            return True
    return False


def detect_language(text: str, previous: Language | None = None) -> Language:
    """Guess az / en / ru from script, Azerbaijani letters and frequent words. A text with too
    little of them to tell (a short follow-up typed without Azerbaijani letters) keeps
    `previous`, the conversation's language, when there is one."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return previous or "az"
    cyr = sum(1 for c in letters if _CYRILLIC.match(c))
    if cyr / len(letters) > 0.3:
        return "ru"
    if _names_aside_azerbaijani(text):
        return "az"
    # A suffix after a hyphen is Azerbaijani's way with abbreviations and numbers ("pH-i",
    # "NPK-nı", "10-da"), not a word of its own: "-i" is not the English "i".
    tokens = _WORD_TOKEN.findall(text.lower())
    az = sum(1 for t in tokens if t in _AZ_WORDS)
    en = sum(1 for t in tokens if t in _EN_WORDS)
    if az != en:
        return "az" if az > en else "en"
    odds = _latin_log_odds(text)
    if previous is not None and abs(odds) < UNDECIDED_NATS:
        return previous
    return "az" if odds > 0 else "en"


def _trigrams(text: str) -> list[str]:
    padded = f" {_NOT_LATIN.sub(' ', fold(text))} "
    return [padded[i : i + 3] for i in range(len(padded) - 2)]


@cache
def _trigram_log_probs() -> dict[str, tuple[dict[str, float], float]]:
    """Language -> (log P of each folded letter trigram, log P of an unseen one), from the
    bundled knowledge base's Azerbaijani and English articles (read once, on first use)."""
    kb = resources.files("alim") / "data" / "kb"
    models: dict[str, tuple[dict[str, float], float]] = {}
    for language in ("az", "en"):
        counts: Counter[str] = Counter()
        for article in kb.iterdir():
            if article.name.endswith(f".{language}.md"):
                counts.update(_trigrams(article.read_text(encoding="utf-8")))
        total = sum(counts.values()) + 27**3  # add-one smoothing over a-z and space
        models[language] = (
            {g: math.log((n + 1) / total) for g, n in counts.items()},
            math.log(1 / total),
        )
    return models


def _latin_log_odds(text: str) -> float:
    """How much more Azerbaijani than English a Latin text's letter trigrams are: typed
    without Azerbaijani letters ("istixanada badimcanin ciceyi tokulur"), it shares no word
    with a short list, but its letter sequences are still Azerbaijani."""
    (az, az_unseen), (en, en_unseen) = (_trigram_log_probs()[k] for k in ("az", "en"))
    return sum(az.get(g, az_unseen) - en.get(g, en_unseen) for g in _trigrams(text))


STOP_STEMS = frozenset(stems(_STOP_TEXT))


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?![a-zа-яёəğıöşüç]{2})")
"""A sentence ends at '.', '!' or '?' and a space, unless a word in lower case goes on: the dot
of an abbreviation ('80–120 тыс. растений', 'e.g. compost', '(см. этикетку)'). 'pH' starts a
sentence."""
_LIST_MARK = re.compile(r"^[-*•]\s*|^\d+[.)]\s+")
_LABEL = re.compile(r"^\*\*([^*]{2,80}?)[:：]?\*\*[:：]?\s*")
_TABLE_RULE = re.compile(r"^\|[\s:|-]+\|?$")
MIN_SENTENCE_CHARS = 25
MIN_FIGURE_WORDS = 3
"""A fragment shorter than MIN_SENTENCE_CHARS is a sentence when it holds a figure and at least
this many words ("Tillering: 5–10 cm": the stage, the figure, the unit)."""


def _cells(row: str) -> list[str]:
    return [c.strip().strip("*").strip() for c in row.strip().strip("|").split("|")]


LEAD_IN_MAX_CHARS = 120
"""A line ending with a colon at most this long introduces the list below it (longer: it is
a sentence of its own)."""


def headed_sentences(text: str) -> list[tuple[str, str]]:
    """(heading, sentence) for the sentences of an article's text, each with the Markdown
    heading it stands under ("" before the first).

    A list item's first sentence carries the lead-in that introduces the list ("Yield starts
    to fall at about (ECe, dS/m): barley ~8, cotton ~7.7"), its later sentences its bold label
    ("Potassium (K): Shortage: scorched edges…"), and a table row becomes one sentence naming
    its columns ("Potato: N 100–150; P2O5 80–120"): what the sentence is about travels with it.
    A lead-in followed by its list is not a sentence of its own. List markers are stripped;
    fragments shorter than MIN_SENTENCE_CHARS are left out unless they hold a figure
    (MIN_FIGURE_WORDS). Changing what this returns changes the index's sentences: bump
    alim.knowledge.index.FORMAT_VERSION."""
    heading = ""
    header: list[str] = []
    lead = ""  # the lead-in of the list being read
    led = False  # whether an item carried it
    out: list[tuple[str, str]] = []

    def emit(sentence: str) -> None:
        # A short item holding a figure is a fact of its own ("Tillering: 5–10 cm." under
        # "Water management"); other short fragments say nothing alone.
        if len(sentence) >= MIN_SENTENCE_CHARS or (
            _has_digit(sentence) and len(words(sentence)) >= MIN_FIGURE_WORDS
        ):
            out.append((heading, sentence))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        item = bool(_LIST_MARK.match(line)) and not line.startswith("**")
        if lead and not item:
            if not led:
                emit(lead)  # no list followed: the lead-in stands alone
            lead, led = "", False
        if line.startswith("#"):
            heading, header = line.lstrip("#").strip(), []
            continue
        if line.startswith("|"):
            if _TABLE_RULE.match(line):
                continue
            cells = _cells(line)
            if not header:
                header = cells
                continue
            pairs = [f"{h} {c}" for h, c in zip(header[1:], cells[1:], strict=False) if c]
            line = f"{cells[0]}: " + "; ".join(pairs) + "." if pairs else ""
        else:
            header = []
        line = _LIST_MARK.sub("", line)
        label = _LABEL.match(line)
        found = [part.strip() for part in _SENTENCE_END.split(line)]
        if not item and found and found[-1].endswith(":") and len(found[-1]) <= LEAD_IN_MAX_CHARS:
            *found, lead = found
            led = False
        for i, sentence in enumerate(found):
            if i and label:
                sentence = f"{label.group(1).strip()}: {sentence}"
            elif not i and item and lead:
                sentence, led = f"{lead} {sentence}", True
            emit(sentence)
    if lead and not led:
        emit(lead)
    return out


def sentences(text: str) -> list[str]:
    """The sentences of `headed_sentences`, without their headings."""
    return [sentence for _, sentence in headed_sentences(text)]
