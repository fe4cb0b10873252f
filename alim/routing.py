"""The default router: word-boundary rules first, then a semantic vote over labelled exemplars.

Rules catch what must never be missed or confused (a request for a person; a greeting that
announces a farming question, "Salam, əkinçiliklə bağlı sualım var", which is not a mere
greeting). Everything else is decided by embedding similarity to the az/en/ru exemplars in
`alim/data/route_exemplars.json` (mean of each route's three nearest exemplars).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

from alim.embeddings import embedder_name
from alim.text import fold, words
from alim.vocab import ROUTES, Route

TOP_N = 3


def _rx(*patterns: str) -> re.Pattern[str]:
    """A case-insensitive alternation matched on folded text, at word starts."""
    return re.compile(r"(?<!\w)(?:" + "|".join(fold(p) for p in patterns) + ")", re.IGNORECASE)


# A person is asked for: "aqronomla danışmaq", "talk to a human", "соедините со специалистом".
_PERSON_WORDS = (
    r"aqronom\w*",
    r"mütəxəssis\w*",
    r"insan\w*",
    r"operator\w*",
    r"canlı",
    r"adam\w*",
    r"human",
    r"person",
    r"agronomist",
    r"expert",
    r"specialist",
    r"consultant\w*",
    r"someone",
    r"operator",
    r"агроном\w*",
    r"специалист\w*",
    r"человек\w*",
    r"оператор\w*",
    r"эксперт\w*",
    r"məsləhətçi\w*",
    r"kimsə",
    r"сотрудник\w*",
    r"консультант\w*",
)
_PERSON = _rx(*_PERSON_WORDS)
# What a person said or advised, reported: "агроном сказал дать азот", "aqronom dedi ki",
# "the agronomist told me to spray": a mention, not a request for one. Past and present only:
# "aqronom məsləhət versin", "пусть агроном посоветует" do ask for one.
_SAID = (
    r"dedi\w*",
    r"deyib\w*",
    r"deyir\w*",
    r"dediy\w*",
    r"məsləhət (?:gördü|görüb|verdi|verib|bildi)\w*",
    r"tövsiyə (?:etdi|edib|edir)\w*",
    r"yazdı\w*",
    r"yazıb\w*",
    r"said",
    r"says",
    r"told",
    r"tells",
    r"recommended",
    r"advised",
    r"suggested",
    r"prescribed",
    r"wrote",
    r"сказал\w*",
    r"говорил\w*",
    r"говорит",
    r"советовал\w*",
    r"советует",
    r"посоветовал\w*",
    r"рекомендовал\w*",
    r"рекомендует",
    r"порекомендовал\w*",
    r"велел\w*",
    r"прописал\w*",
    r"назначил\w*",
    r"написал\w*",
)
_REPORTED = re.compile(
    r"(?<!\w)(?:"
    + "|".join(fold(p) for p in _PERSON_WORDS)
    + r")(?:\s+\w+){0,2}?[\s,]+(?:"
    + "|".join(fold(p) for p in _SAID)
    + r")(?!\w)",
    re.IGNORECASE,
)
# The user asks to be called: "zəng edin", "call me back", "перезвоните".
_CALL_ME = _rx(r"zəng ed\w*", r"zəng et\w*", r"call me", r"call back", r"перезвон\w*", r"позвон\w*")
# The user asks who or what the assistant is: smalltalk, never a hand-off to a person.
_IDENTITY = re.compile(
    "|".join(
        fold(p)
        for p in (
            r"\bwho (?:are|r) (?:you|u)\b",
            r"\bwho am i (?:talking|speaking|chatting) (?:to|with)\b",
            r"\bwhat can (?:you|u) do\b",
            r"\bwhat are you\b",
            r"\bsən kimsən\b",
            r"\bsiz kimsiniz\b",
            r"\bkiminlə danışıram\b",
            r"\bnə edə bilərsən\b",
            r"\bnə bacarırsan\b",
            r"\bsəni kim (?:yaradıb|yaratdı|düzəldib|hazırlayıb)\b",
            r"\bwho (?:made|created|built) (?:you|u)\b",
            r"\bкто (?:тебя|вас) (?:создал|сделал|разработал)\b",
            r"\bкто ты\b",
            r"\bкто вы\b",
            r"\bс кем я (?:говорю|разговариваю)\b",
            r"\bчто ты умеешь\b",
            r"\bчто вы умеете\b",
            # What it can help with: "hansı suallarda kömək edə bilər?", "чем вы можете помочь?"
            r"\bhansı suallar\w*",
            r"\bnə ilə kömək\b",
            r"\bwhat (?:kind of |sort of )?(?:questions|things) can\b",
            r"\bwhat can (?:you|u|this app|this bot) help\b",
            r"\bкакие вопросы (?:можно|ты|вы)\b",
            r"\bчем (?:ты|вы) (?:можешь|можете) помочь\b",
        )
    ),
    re.IGNORECASE,
)
_CONTACT = _rx(
    r"danış\w*",
    r"əlaqə\w*",
    r"zəng\w*",
    r"qoş\w*",
    r"lazımdır",
    r"istəyirəm",
    r"göndər\w*",
    r"gəl\w*",
    r"talk",
    r"speak",
    r"connect",
    r"call",
    r"contact",
    r"need",
    r"want",
    r"send",
    r"visit",
    r"поговор\w*",
    r"связ\w*",
    r"соедин\w*",
    r"позвон\w*",
    r"нуж\w*",
    r"хочу",
    r"пришл\w*",
    r"присла\w*",
    r"вызв\w*",
)
# Weather vocabulary: the semantic vote may say "weather" only if one of these is present
# (a place name alone, "Şamaxıda üzüm sortları", is not a weather question).
_WEATHER = _rx(
    r"hava",
    r"havalar\w*",
    r"proqnoz\w*",
    r"yağış\w*",
    r"yağa\w*",
    r"yağmur\w*",
    r"qar(?:ı|da|lı|\b)",
    r"dolu",
    r"şaxta\w*",
    r"don\b",
    r"külək\w*",
    r"temperatur\w*",
    r"isti\w*",
    r"soyuq\w*",
    r"weather",
    r"forecast\w*",
    r"rain\w*",
    r"snow\w*",
    r"frost\w*",
    r"wind\w*",
    r"temperature\w*",
    r"hail",
    r"storm\w*",
    r"hot",
    r"cold",
    r"heat\w*",
    r"погод\w*",
    r"прогноз\w*",
    r"дожд\w*",
    r"снег\w*",
    r"замороз\w*",
    r"мороз\w*",
    r"ветр\w*",
    r"ветер",
    r"температур\w*",
    r"град\w*",
    r"жар\w*",
    r"холод\w*",
    r"осадк\w*",
)
# What asks for a forecast rather than a rule: a time ahead, or the forecast itself. Without one,
# "what wind speed is too strong for spraying" asks for a threshold (agronomy), not the weather.
_FORECAST = _rx(
    r"proqnoz\w*",
    r"bu ?gün\w*",
    r"sabah\w*",
    r"birigün",
    r"bu həftə\w*",
    r"gələn həftə\w*",
    r"indi",
    r"olacaq\w*",
    r"yağacaq\w*",
    r"forecast\w*",
    r"today",
    r"tonight",
    r"tomorrow",
    r"this week\w*",
    r"next (?:few )?days?",
    r"next week",
    r"weekend",
    r"now",
    r"will it",
    r"will there be",
    r"going to",
    r"прогноз\w*",
    r"сегодня",
    r"завтра",
    r"послезавтра",
    r"(?:на )?(?:этой|следующей) неделе",
    r"выходны\w*",
    r"сейчас",
    r"будет",
    r"будут",
    r"ожида\w*",
)
# A question about farming is announced: "sualım var", "I have a question", "есть вопрос".
_INTENT = _rx(r"sual\w*", r"question", r"вопрос\w*", r"kömək", r"help", r"помо\w*")
_FARMING = _rx(
    r"əkin\w*",
    r"ferma\w*",
    r"fermer\w*",
    r"kənd təsərrüfat\w*",
    r"aqrar\w*",
    r"bağ\w*",
    r"farm\w*",
    r"crop\w*",
    r"agricultur\w*",
    r"garden\w*",
    r"сельск\w*",
    r"ферм\w*",
    r"урожа\w*",
    r"огород\w*",
    r"посев\w*",
)
_GREETING = _rx(
    r"salam\w*",
    r"hello",
    r"hi",
    r"hey",
    r"good (morning|afternoon|evening)",
    r"привет\w*",
    r"здравствуй\w*",
    r"добрый",
)
# Filler of an intent-only message; anything beyond these is treated as real content.
_FILLER = frozenset(
    words(
        "salam sizə bir sualım var mənim əkinçiliklə əkinçilik bağlı ilə haqqında kənd "
        "təsərrüfatı fermerəm ferma var hello hi i have a question about farming agriculture "
        "my farm can you help me with привет здравствуйте у меня есть вопрос по сельскому "
        "хозяйству ферме помогите"
    )
)


# Unmistakably not farming, whatever else the message says.
_OFF_TOPIC = _rx(
    r"bitcoin\w*",
    r"bitkoin\w*",
    r"kripto\w*",
    r"crypto\w*",
    r"биткоин\w*",
    r"крипто\w*",
    r"forex",
    r"форекс",
    r"futbol\w*",
    r"football",
    r"футбол\w*",
    r"casino",
    r"kazino",
    r"казино",
    # Shares on a stock exchange: "акции Apple" names a company, not a fruit.
    r"stock market",
    r"stocks\b",
    r"shares\b",
    r"birja\w*",
    r"səhm\w*",
    r"бирж\w*",
    r"акци[ийяю]\b",
)


# Thanks and goodbyes (matched on folded text): small talk whatever the conversation.
THANKS = re.compile(
    r"(?<!\w)(sag ?ol\w*|tesekkur\w*|minnetdar\w*|thank\w*|thx|bye|goodbye|"
    r"спасибо|благодар\w*|пока|до свидания|helelik|gorusenedek)",
)
PLEASANTRY_MAX_WORDS = 5


def pleasantry(text: str) -> bool:
    """A short greeting, thanks or goodbye ("Çox sağ olun!", "thanks, bye", "Привет"): it
    ends or opens a conversation rather than going on with it."""
    folded = fold(text)
    return len(words(text)) <= PLEASANTRY_MAX_WORDS and bool(
        THANKS.search(folded) or _GREETING.search(folded)
    )


def asks_forecast(text: str) -> bool:
    """Whether the text asks what the weather will be (a time ahead, "forecast")."""
    return bool(_FORECAST.search(fold(text)))


def names_a_person(text: str) -> bool:
    """Whether the text mentions a person to talk to (an agronomist, an operator, "call me")."""
    folded = fold(text)
    return bool(_PERSON.search(_unreported(folded)) or _CALL_ME.search(folded))


def _unreported(folded: str) -> str:
    """The folded text without the people it only reports ("агроном сказал …")."""
    return _REPORTED.sub(" ", folded)


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    score: float
    method: str
    needs_question: bool = False
    """The user announced a question without asking it: invite it, do not escalate."""
    runner_up: Route | None = None
    """The semantic vote's second route (what the text is, if not the first)."""


def bundled_exemplars() -> dict[str, list[str]]:
    path = resources.files("alim") / "data" / "route_exemplars.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    return {route: list(data[route]) for route in ROUTES}


class SemanticRouter:
    """Rules + nearest-exemplar vote. Exemplar vectors are cached on disk (numpy, no pickle)."""

    def __init__(
        self,
        embeddings: Embeddings,
        exemplars: dict[str, list[str]] | None = None,
        *,
        cache_dir: Path | None = None,
    ):
        self.embeddings = embeddings
        self.exemplars = exemplars or bundled_exemplars()
        self.cache_dir = cache_dir
        self._labels: list[str] = [r for r in ROUTES for _ in self.exemplars.get(r, [])]
        self._matrix: np.ndarray | None = None
        self._lock = threading.Lock()

    def classify(self, text: str) -> RouteDecision:
        ruled = self.rules(text)
        if ruled is not None:
            return ruled
        return self.semantic(text)

    @staticmethod
    def rules(text: str) -> RouteDecision | None:
        folded = fold(text)
        if _IDENTITY.search(folded) and not _FARMING.search(folded) and len(words(text)) <= 8:
            return RouteDecision("smalltalk", 1.0, "rule:identity")
        if _PERSON.search(_unreported(folded)) and _CONTACT.search(folded):
            return RouteDecision("human", 1.0, "rule:person_requested")
        if _OFF_TOPIC.search(folded):
            return RouteDecision("off_topic", 1.0, "rule:off_topic")
        if _INTENT.search(folded) and (_FARMING.search(folded) or _GREETING.search(folded)):
            content = [w for w in words(text) if w not in _FILLER]
            if len(content) <= 1:
                return RouteDecision("agronomy", 1.0, "rule:farming_intent", needs_question=True)
        return None

    def semantic(self, text: str) -> RouteDecision:
        matrix = self._exemplar_matrix()
        query = np.asarray(self.embeddings.embed_query(text), dtype="float32")
        query /= np.linalg.norm(query) or 1.0
        sims = matrix @ query
        scores: list[tuple[float, Route]] = []
        for route in ROUTES:
            route_sims = np.sort(sims[[i for i, r in enumerate(self._labels) if r == route]])
            if len(route_sims):
                scores.append((float(route_sims[-TOP_N:].mean()), route))
        scores.sort(reverse=True)
        method = "semantic"
        if not _WEATHER.search(fold(text)) and len(scores) > 2:
            if scores[0][1] == "weather":
                method = "semantic:no_weather_word"
            scores = [s for s in scores if s[1] != "weather"]
        runner_up = scores[1][1] if len(scores) > 1 else None
        return RouteDecision(scores[0][1], round(scores[0][0], 4), method, runner_up=runner_up)

    def _cache_key(self) -> str:
        payload = json.dumps([embedder_name(self.embeddings), self.exemplars], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    def _exemplar_matrix(self) -> np.ndarray:
        with self._lock:
            if self._matrix is None:
                self._matrix = self._load_or_embed()
            return self._matrix

    def _load_or_embed(self) -> np.ndarray:
        path = self.cache_dir / f"router-{self._cache_key()}.npy" if self.cache_dir else None
        if path is not None and path.exists():
            try:
                matrix = np.load(path, allow_pickle=False)
                if matrix.shape[0] == len(self._labels):
                    return matrix
            except (OSError, ValueError):
                pass  # a damaged cache is simply recomputed
        texts = [t for r in ROUTES for t in self.exemplars.get(r, [])]
        # Exemplars and queries are the same kind of text: embed both as queries (E5's advice
        # for symmetric tasks).
        many = getattr(self.embeddings, "embed_queries", None)  # batched where the model can
        vectors = many(texts) if many else [self.embeddings.embed_query(t) for t in texts]
        matrix = np.asarray(vectors, dtype="float32")
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True).clip(min=1e-12)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, matrix, allow_pickle=False)
            tmp.replace(path)
        return matrix
