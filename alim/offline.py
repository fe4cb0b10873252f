"""The offline model: an honest, retrieval-only answer composer, used when no LLM is configured.

It is a LangChain chat model (so its output streams through LangGraph like any other model's),
but it generates nothing: it leads with the sentence that answers (the evidence comes ranked,
best first: graphs.evidence), then quotes the next best sentences of all the evidence by their
scores, whichever article they come from, to about MAX_WORDS words; it prefers the question's
language, adds the forecast and the rule-based advice, cites its sources and says that it is the
offline mode. It is deterministic.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import BaseModel, Field

from alim.i18n import text as _t
from alim.routing import THANKS
from alim.text import content_stems, fold, sentences, stems

OFFLINE_MODEL_NAME = "alim-offline-retrieval"
MAX_ARTICLES = 3
MAX_WORDS = 120
"""Words quoted, at most (the first sentence always comes, whatever its length)."""
REPEAT_OVERLAP = 0.75
"""Share of their content words (of all either holds) that makes two sentences say one thing:
"sow wheat in October on lowland fields" and the same of barley share 5 of 7, and both stay."""


class Grounding(BaseModel):
    """Everything an answer may use, built by the `generate` node for any model."""

    question: str
    language: str = "az"
    route: str = "agronomy"
    needs_question: bool = False
    passages: list[dict[str, Any]] = Field(default_factory=list)
    """[{n, title, text, language, article_id, score, sentences?}], numbered as cited;
    `sentences`, when given, are ranked best first (otherwise the text's are ranked here)."""
    place: str | None = None
    forecast_days: list[dict[str, Any]] = Field(default_factory=list)
    advice: list[str] = Field(default_factory=list)
    weather_unavailable: bool = False
    profile: dict[str, Any] | None = None


def _ranked(question: str, passage: dict[str, Any]) -> list[str]:
    """A passage's sentences, best first: as ranked by the evidence, or else by the word stems
    they share with the question."""
    if passage.get("sentences"):
        return list(passage["sentences"])
    wanted = set(stems(question))
    found = sentences(passage["text"])
    return sorted(found, key=lambda s: -len(wanted & set(stems(s))))


def _pick_passages(g: Grounding) -> tuple[list[dict[str, Any]], bool]:
    same = [p for p in g.passages if p.get("language") == g.language]
    chosen = same or list(g.passages)
    by_article: dict[str, list[dict[str, Any]]] = {}
    for p in chosen:
        by_article.setdefault(p["article_id"], []).append(p)
    articles = list(by_article.values())[:MAX_ARTICLES]
    return [p for group in articles for p in group], bool(g.passages) and not same


def _one_per_article(passages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first passage of each article, the articles' texts joined (plain passages may come
    several per article)."""
    merged: dict[str, dict[str, Any]] = {}
    for p in passages:
        if p["article_id"] in merged:
            first = merged[p["article_id"]]
            first["text"] = f"{first['text']} {p['text']}"
        else:
            merged[p["article_id"]] = dict(p)
    return list(merged.values())


def _profile_text(profile: dict[str, Any] | None) -> str:
    if not profile:
        return ""
    parts = []
    for key in ("region", "crops", "soil", "irrigation"):
        value = profile.get(key)
        if value:
            parts.append(f"{key}: {', '.join(value) if isinstance(value, list) else value}")
    return "; ".join(parts)


def _candidates(question: str, passages: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(passage index, sentence) of every passage, in answer order: the first passage's best
    sentence (the answer), then every other sentence by its evidence score, whichever article
    it comes from (the wheat article's third sentence may answer worse than the fertiliser
    article's first). Sentences without a score (plain passages) follow, in article order."""
    scored: list[tuple[float, int, int, str]] = []
    for i, p in enumerate(passages):
        scores = p.get("scores") or []
        for j, sentence in enumerate(_ranked(question, p)):
            score = scores[j] if j < len(scores) else float("-inf")
            scored.append((score, i, j, sentence))
    if not scored:
        return []
    lead, rest = scored[0], sorted(scored[1:], key=lambda c: (-c[0], c[1], c[2]))
    return [(i, sentence) for _, i, _, sentence in (lead, *rest)]


def _repeats(words: set[str], picked: list[set[str]]) -> bool:
    """Says nearly what a picked sentence says (two articles stating one fact): the two share
    REPEAT_OVERLAP of their content words."""
    return any(len(words & other) >= REPEAT_OVERLAP * len(words | other) for other in picked)


def _body(question: str, passages: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """The quoted answer, about MAX_WORDS words of the best sentences, each run of sentences
    from one article followed by its citation; and the passages cited."""
    picked: list[tuple[int, str]] = []
    seen: list[set[str]] = []
    words = 0
    for i, sentence in _candidates(question, passages):
        size = len(sentence.split())
        if picked and words + size > MAX_WORDS:
            continue
        content = content_stems(sentence)
        if picked and _repeats(content, seen):
            continue
        picked.append((i, sentence))
        seen.append(content)
        words += size
    runs: list[tuple[int, list[str]]] = []
    for i, sentence in picked:
        if runs and runs[-1][0] == i:
            runs[-1][1].append(sentence)
        else:
            runs.append((i, [sentence]))
    text = " ".join(f"{' '.join(quoted)} [{passages[i]['n']}]" for i, quoted in runs)
    cited_at = sorted({i for i, _ in picked})
    return text, [passages[i] for i in cited_at]


def compose(g: Grounding) -> str:
    """The whole answer text for a grounding, in the grounding's language."""
    lang = g.language
    if g.route == "smalltalk":
        return _t("thanks" if THANKS.search(fold(g.question)) else "smalltalk", lang)
    if g.route == "off_topic":
        return _t("off_topic", lang)
    if g.needs_question:
        return _t("needs_question", lang)

    blocks: list[str] = []
    if g.route == "weather":
        place = g.place or "?"
        if g.weather_unavailable or not g.forecast_days:
            blocks.append(_t("weather_unavailable", lang, place=place))
        else:
            lines = [_t("forecast", lang, place=place)]
            for d in g.forecast_days:
                lines.append(
                    _t(
                        "day",
                        lang,
                        date=_short_date(d["date"]),
                        tmin=_num(d.get("t_min")),
                        tmax=_num(d.get("t_max")),
                        rain=_num(d.get("precipitation_mm")),
                        wind=_num(d.get("wind_max_kmh")),
                    )
                )
            blocks.append("\n".join(lines))
            advice = g.advice or [_t("no_advice", lang)]
            blocks.append(_t("advice", lang) + "\n" + "\n".join(f"• {a}" for a in advice))

    passages, other_language = _pick_passages(g)
    cited: list[dict[str, Any]] = []
    if passages:
        body, cited = _body(g.question, _one_per_article(passages))
        if other_language:
            body += "\n\n" + _t("other_language", lang)
        blocks.append(body)
    elif g.route != "weather":
        blocks.append(_t("nothing", lang))

    profile = _profile_text(g.profile)
    if profile:
        blocks.append(_t("profile", lang, profile=profile))
    if cited:
        refs = "; ".join(f"[{p['n']}] {p['title']}" for p in cited)
        blocks.append(f"{_t('sources', lang)} {refs}")
    blocks.append(_t("offline", lang))
    return "\n\n".join(blocks)


def _short_date(iso: str) -> str:
    parts = iso.split("-")
    return f"{parts[2]}.{parts[1]}" if len(parts) == 3 else iso


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 else f"{value:.1f}"


_PIECE = re.compile(r"\S+\s*|\s+")


def pieces(text: str, words_per_piece: int = 4) -> Iterator[str]:
    """Split text into small chunks (a few words, whitespace kept) for streaming.

    Lazily, as slices of `text`: a stream lasts as long as its answer is being sent, and a list
    of every word held meanwhile cost ~10 KiB per open stream (bench streams, issue 17)."""
    start = words = 0
    for word in _PIECE.finditer(text):  # the matches tile the text, whitespace included
        words += 1
        if words == words_per_piece:
            yield text[start : word.end()]
            start, words = word.end(), 0
    if start < len(text):
        yield text[start:]


class OfflineChatModel(BaseChatModel):
    """Streams `compose(grounding)`; the grounding comes as the `grounding` call argument."""

    model_name: str = OFFLINE_MODEL_NAME
    delay: float = 0.0
    """Seconds to wait between chunks (demos and tests of long-running streams)."""

    @property
    def _llm_type(self) -> str:
        return "alim-offline"

    def _text(self, messages: list[BaseMessage], grounding: Any) -> str:
        if grounding is None:
            question = str(messages[-1].content) if messages else ""
            grounding = Grounding(question=question, route="agronomy")
        elif isinstance(grounding, dict):
            grounding = Grounding(**grounding)
        return compose(grounding)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._result(self._text(messages, kwargs.get("grounding")))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # On the event loop, as `_astream` (not in a worker thread, as langchain's default
        # would); a slowed model takes as long as its stream would.
        text = self._text(messages, kwargs.get("grounding"))
        if self.delay:
            await asyncio.sleep(self.delay * sum(1 for _ in pieces(text)))
        return self._result(text)

    def _result(self, text: str) -> ChatResult:
        message = AIMessage(content=text, response_metadata={"model_name": self.model_name})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for piece in pieces(self._text(messages, kwargs.get("grounding"))):
            if self.delay:
                time.sleep(self.delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._last_chunk()

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for piece in pieces(self._text(messages, kwargs.get("grounding"))):
            if self.delay:
                await asyncio.sleep(self.delay)
            # No delay: the text is ready, so its pieces go out in one burst (a pause of the
            # event loop per piece would cost a loop iteration each and help nobody).
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield self._last_chunk()

    def _last_chunk(self) -> ChatGenerationChunk:
        return ChatGenerationChunk(
            message=AIMessageChunk(content="", response_metadata={"model_name": self.model_name})
        )
