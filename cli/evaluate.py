"""The evaluation behind `alim eval`: answers judged against a labelled question set.

`alim eval [eval/questions.jsonl]` runs every row through the real engine (in-memory
checkpointer and registry, the forecast service pointed at nothing so weather turns take the
unavailable path, the offline model unless `--model` names a hosted one) and reports, per split
(dev, test, all) and per language (az, en, ru):

- key fact present: rows with a `key_fact` (kinds fact and followup) whose answer matches one of
  its regexes (`re.search`, IGNORECASE, on the answer as it is and NFC-normalised);
- key fact within the first 60 words (whitespace-separated tokens) of the answer;
- answer language: answered rows (not escalated; kinds fact, followup, smalltalk, off_topic,
  weather) whose answer, without the sources line and the offline footer, is detected as the
  row's language;
- route accuracy; the follow-up fact rate (key fact present among follow-ups);
- escalation of uncovered questions: recall (escalated among `uncovered`) and precision
  (`uncovered` among escalated rows that are not `human` requests); requests for a person are
  counted on their own (`human_requests_escalated`: escalated with reason user_requested);
- over-escalation (escalated among the answerable kinds) and `smalltalk_escalated` (must be 0);
- the older figures: retrieval hit@3 of the index search on the question (standalone rows:
  a follow-up's question means nothing without its conversation) and escalation agreement.

Every row gets its own end user and thread. A follow-up row replays its `history` in that thread
first (one turn per message, answers not judged), then asks `question` there; that answer is
judged. Hand-off is off for evaluation runs (`Context(human_handoff=False)`): an escalated
history turn would otherwise pause the thread for an agronomist. Whether a turn escalates does
not depend on it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from alim.errors import AlimError
from alim.events import TurnResult
from alim.knowledge.index import SearchOptions
from alim.llm import ModelChain
from alim.settings import Settings
from alim.text import detect_language
from alim.threads import Owner
from alim.vocab import LANGUAGES
from engine import Context, Engine, GraphDeps, TurnRequest

SplitChoice = Literal["dev", "test", "all"]
SPLITS: tuple[str, ...] = ("dev", "test")
KEY_FACT_KINDS = frozenset({"fact", "followup"})
ANSWERED_KINDS = frozenset({"fact", "followup", "smalltalk", "off_topic", "weather"})
"""Kinds that should be answered, not handed to a person (answer language, over-escalation)."""
FIRST_WORDS = 60
EVAL_PARTNER = "eval"
USER_REQUESTED = "user_requested"
MISS_ANSWER_CHARS = 200

# ---------------------------------------------------------------------------------- scoring
_SOURCES_LINE = re.compile(r"^\s*(?:Mənbələr|Sources|Источники)\s*:", re.IGNORECASE)
_FOOTER_LINE = re.compile(r"^\s*_[^\n]*_\s*$")
_CITATION = re.compile(r"\[\d+(?:\s*[,–-]\s*\d+)*\]")
_BRAND = re.compile(r"\b(?:ALİM|АЛИМ)\b")
_SEGMENT = re.compile(r"(?<=[.!?:;])\s+|\n+")
_AZ_LETTER = re.compile(r"[əğışçöüƏĞİŞÇÖÜ]")


def _variants(text: str) -> list[str]:
    nfc = unicodedata.normalize("NFC", text)
    return [text] if nfc == text else [text, nfc]


def _compile(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    out: list[re.Pattern[str]] = []
    for p in patterns:
        for variant in _variants(p):
            out.append(re.compile(variant, re.IGNORECASE))
    return out


def key_fact_present(answer: str, patterns: Sequence[str]) -> bool:
    """Whether the answer states the key fact: any regex matches the answer or its NFC form."""
    compiled = _compile(patterns)
    return any(rx.search(text) for rx in compiled for text in _variants(answer))


def first_words(text: str, n: int = FIRST_WORDS) -> str:
    """The text up to the end of its n-th whitespace-separated token, spacing kept as it is."""
    end = 0
    for i, m in enumerate(re.finditer(r"\S+", text)):
        if i == n:
            break
        end = m.end()
    return text[:end]


def key_fact_early(answer: str, patterns: Sequence[str], n: int = FIRST_WORDS) -> bool:
    """Whether the key fact is stated within the first n words of the answer."""
    return key_fact_present(first_words(answer, n), patterns)


def answer_body(answer: str) -> str:
    """The answer without its sources line, the offline-mode footer and `[n]` citations."""
    lines = [
        line
        for line in answer.splitlines()
        if not _SOURCES_LINE.match(line) and not _FOOTER_LINE.match(line)
    ]
    return _CITATION.sub("", "\n".join(lines)).strip()


def _without_names(segment: str) -> str:
    """The segment without capitalised words spelt with Azerbaijani letters after its first
    word: place names (Lənkəran, Şəki) in an English sentence are not Azerbaijani text."""
    tokens = segment.split()
    kept = tokens[:1] + [t for t in tokens[1:] if not (t[:1].isupper() and _AZ_LETTER.search(t))]
    return " ".join(kept)


def answer_language(answer: str) -> str | None:
    """az / en / ru of the answer's text (None when it has no letters).

    `detect_language` is made for short questions: one Azerbaijani letter makes a text
    Azerbaijani. An answer is long, so each sentence is detected on its own (without the product
    name and place names) and the language with most letters wins."""
    body = _BRAND.sub("", answer_body(answer))
    votes: Counter[str] = Counter()
    for segment in _SEGMENT.split(body):
        letters = sum(c.isalpha() for c in segment)
        if letters:
            votes[detect_language(_without_names(segment))] += letters
    if not votes:
        return None
    return votes.most_common(1)[0][0]


def ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


# ---------------------------------------------------------------------------------- outcomes
@dataclass
class Outcome:
    """One row, judged."""

    id: str
    split: str
    lang: str
    kind: str
    question: str
    expected_route: str
    expected_escalate: bool
    route: str | None = None
    escalated: bool = False
    escalation_reason: str | None = None
    answer: str = ""
    model: str = ""
    thread_id: str | None = None
    user_turns: int = 0
    """User messages in the row's thread after the judged turn (history + 1 when replayed)."""
    key_fact: bool | None = None
    """None: the row has no key fact."""
    key_fact_early: bool | None = None
    answer_language: str | None = None
    language_ok: bool | None = None
    """None: the row is not an answered row (escalated, or a kind that should escalate)."""
    retrieval_hit: bool | None = None
    top3: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def route_ok(self) -> bool:
        return self.route == self.expected_route

    def failures(self) -> list[str]:
        out = []
        if self.error:
            out.append("error")
        if not self.route_ok:
            out.append("route")
        if self.key_fact is False:
            out.append("key_fact")
        if self.language_ok is False:
            out.append("language")
        if self.escalated != self.expected_escalate or (
            self.kind == "human" and self.escalation_reason != USER_REQUESTED
        ):
            out.append("escalation")
        if self.retrieval_hit is False:
            out.append("retrieval")
        return out

    def miss(self) -> dict[str, Any] | None:
        failed = self.failures()
        if not failed:
            return None
        out: dict[str, Any] = {
            "id": self.id,
            "split": self.split,
            "kind": self.kind,
            "lang": self.lang,
            "question": self.question,
            "failed": failed,
        }
        if self.error:
            out["error"] = self.error
        if "route" in failed:
            out["route"] = {"expected": self.expected_route, "got": self.route}
        if "key_fact" in failed or "language" in failed:
            out["answer"] = self.answer[:MISS_ANSWER_CHARS]
        if "language" in failed:
            out["answer_language"] = self.answer_language
        if "escalation" in failed:
            out["escalation"] = {
                "expected": self.expected_escalate,
                "got": self.escalated,
                "reason": self.escalation_reason,
            }
        if "retrieval" in failed:
            out["top3"] = self.top3
        return out


def judge(
    row: dict[str, Any],
    result: TurnResult | None,
    *,
    user_turns: int = 0,
    top3: list[str] | None = None,
    error: str | None = None,
) -> Outcome:
    """Score one row's judged turn (`result` None: the turn failed with `error`)."""
    kind = row["kind"]
    o = Outcome(
        id=row["id"],
        split=row.get("split", ""),
        lang=row["lang"],
        kind=kind,
        question=row["question"],
        expected_route=row["route"],
        expected_escalate=bool(row["escalate"]),
        user_turns=user_turns,
        error=error,
    )
    if result is not None:
        o.route = result.route
        o.escalated = result.escalated
        o.escalation_reason = result.escalation_reason
        o.answer = result.response
        o.model = result.model
        o.thread_id = result.thread_id
    patterns = row.get("key_fact") or []
    if kind in KEY_FACT_KINDS and patterns:
        answered = result is not None and not o.escalated
        o.key_fact = answered and key_fact_present(o.answer, patterns)
        o.key_fact_early = answered and key_fact_early(o.answer, patterns)
    if kind in ANSWERED_KINDS and result is not None and not o.escalated:
        o.answer_language = answer_language(o.answer)
        o.language_ok = o.answer_language == row["lang"]
    if top3 is not None:
        o.top3 = top3
        o.retrieval_hit = bool(set(top3) & set(row.get("expected_groups") or []))
    return o


# ---------------------------------------------------------------------------------- figures
@dataclass
class Scores:
    """Counts over a set of outcomes; `as_dict()` gives the rates (None: nothing to count)."""

    questions: int = 0
    route_correct: int = 0
    key_fact_rows: int = 0
    key_fact_present: int = 0
    key_fact_early: int = 0
    answered: int = 0
    language_correct: int = 0
    followups: int = 0
    followup_fact_present: int = 0
    uncovered: int = 0
    uncovered_escalated: int = 0
    escalated_not_human: int = 0
    human_requests: int = 0
    human_requests_escalated: int = 0
    answerable: int = 0
    over_escalated: int = 0
    smalltalk_escalated: int = 0
    retrieval_rows: int = 0
    hit_at_3: int = 0
    escalated: int = 0
    escalation_agree: int = 0
    errors: int = 0

    @classmethod
    def of(cls, outcomes: Iterable[Outcome]) -> Scores:
        s = cls()
        for o in outcomes:
            s.add(o)
        return s

    def add(self, o: Outcome) -> None:
        self.questions += 1
        self.route_correct += o.route_ok
        self.errors += o.error is not None
        if o.key_fact is not None:
            self.key_fact_rows += 1
            self.key_fact_present += o.key_fact
            self.key_fact_early += bool(o.key_fact_early)
            if o.kind == "followup":
                self.followups += 1
                self.followup_fact_present += o.key_fact
        if o.language_ok is not None:
            self.answered += 1
            self.language_correct += o.language_ok
        if o.kind == "uncovered":
            self.uncovered += 1
            self.uncovered_escalated += o.escalated
        if o.escalated and o.kind != "human":
            self.escalated_not_human += 1
        if o.kind == "human":
            self.human_requests += 1
            self.human_requests_escalated += o.escalated and o.escalation_reason == USER_REQUESTED
        if o.kind in ANSWERED_KINDS:
            self.answerable += 1
            self.over_escalated += o.escalated
            if o.kind == "smalltalk":
                self.smalltalk_escalated += o.escalated
        if o.retrieval_hit is not None:
            self.retrieval_rows += 1
            self.hit_at_3 += o.retrieval_hit
        self.escalated += o.escalated
        self.escalation_agree += o.escalated == o.expected_escalate

    @property
    def uncovered_recall(self) -> float | None:
        return ratio(self.uncovered_escalated, self.uncovered)

    @property
    def uncovered_precision(self) -> float | None:
        return ratio(self.uncovered_escalated, self.escalated_not_human)

    def as_dict(self) -> dict[str, Any]:
        return {
            "questions": self.questions,
            "route_accuracy": ratio(self.route_correct, self.questions),
            "key_fact_present": ratio(self.key_fact_present, self.key_fact_rows),
            "key_fact_first_60_words": ratio(self.key_fact_early, self.key_fact_rows),
            "answer_language": ratio(self.language_correct, self.answered),
            "followup_fact_rate": ratio(self.followup_fact_present, self.followups),
            "uncovered_escalation_recall": self.uncovered_recall,
            "uncovered_escalation_precision": self.uncovered_precision,
            "human_requests_escalated": ratio(self.human_requests_escalated, self.human_requests),
            "over_escalation": ratio(self.over_escalated, self.answerable),
            "smalltalk_escalated": self.smalltalk_escalated,
            "retrieval_hit_at_3": ratio(self.hit_at_3, self.retrieval_rows),
            "escalation_rate": ratio(self.escalated, self.questions),
            "escalation_agreement": ratio(self.escalation_agree, self.questions),
            "errors": self.errors,
            "counts": {
                "route_correct": self.route_correct,
                "key_fact_rows": self.key_fact_rows,
                "key_fact_present": self.key_fact_present,
                "key_fact_first_60_words": self.key_fact_early,
                "answered": self.answered,
                "answer_language_correct": self.language_correct,
                "followups": self.followups,
                "followup_fact_present": self.followup_fact_present,
                "uncovered": self.uncovered,
                "uncovered_escalated": self.uncovered_escalated,
                "escalated_not_human": self.escalated_not_human,
                "human_requests": self.human_requests,
                "human_requests_escalated": self.human_requests_escalated,
                "answerable": self.answerable,
                "over_escalated": self.over_escalated,
                "retrieval_rows": self.retrieval_rows,
                "hit_at_3": self.hit_at_3,
                "escalated": self.escalated,
            },
        }


@dataclass
class EvalReport:
    outcomes: list[Outcome] = field(default_factory=list)
    split: SplitChoice = "all"
    model: str = ""
    """The `--model` choice ("" = offline)."""

    def scores(self, split: str | None = None, lang: str | None = None) -> Scores:
        return Scores.of(
            o
            for o in self.outcomes
            if (split in (None, "all") or o.split == split) and (lang is None or o.lang == lang)
        )

    def splits(self) -> list[str]:
        """The splits reported: the one asked for, or each split present plus `all`."""
        if self.split != "all":
            return [self.split]
        present = [s for s in SPLITS if any(o.split == s for o in self.outcomes)]
        return [*present, "all"]

    def block(self, split: str | None) -> dict[str, Any]:
        return {
            **self.scores(split).as_dict(),
            "by_language": {
                lang: self.scores(split, lang).as_dict()
                for lang in LANGUAGES
                if any(o.lang == lang for o in self.outcomes)
            },
        }

    @property
    def misses(self) -> list[dict[str, Any]]:
        return [m for o in self.outcomes if (m := o.miss()) is not None]

    def as_dict(self) -> dict[str, Any]:
        overall = self.block(None)
        by_language = overall.pop("by_language")
        return {
            **overall,
            "split": self.split,
            "model": self.model or "offline",
            "models_used": sorted({o.model for o in self.outcomes if o.model}),
            "route_accuracy_by_language": {
                lang: s["route_accuracy"] for lang, s in by_language.items()
            },
            "by_language": by_language,
            "splits": {s: self.block(s) for s in self.splits()},
            "misses": self.misses,
        }


# ---------------------------------------------------------------------------------- table
_TABLE_ROWS: list[tuple[str, Callable[[Scores], tuple[int, int] | int]]] = [
    ("route accuracy", lambda s: (s.route_correct, s.questions)),
    ("key fact present", lambda s: (s.key_fact_present, s.key_fact_rows)),
    ("key fact in first 60 words", lambda s: (s.key_fact_early, s.key_fact_rows)),
    ("answer language", lambda s: (s.language_correct, s.answered)),
    ("follow-up fact rate", lambda s: (s.followup_fact_present, s.followups)),
    ("uncovered escalated (recall)", lambda s: (s.uncovered_escalated, s.uncovered)),
    ("escalations uncovered (precision)", lambda s: (s.uncovered_escalated, s.escalated_not_human)),
    ("human requests escalated", lambda s: (s.human_requests_escalated, s.human_requests)),
    ("over-escalation", lambda s: (s.over_escalated, s.answerable)),
    ("smalltalk escalated", lambda s: s.smalltalk_escalated),
    ("retrieval hit@3", lambda s: (s.hit_at_3, s.retrieval_rows)),
    ("escalation agreement", lambda s: (s.escalation_agree, s.questions)),
    ("errors", lambda s: s.errors),
]


def _cell(value: tuple[int, int] | int) -> str:
    if isinstance(value, int):
        return str(value)
    part, whole = value
    return "—" if not whole else f"{part / whole:.3f} {part}/{whole}"


def format_table(report: EvalReport) -> str:
    """A compact text table: one block per split, a column per language and one for all."""
    languages = [lang for lang in LANGUAGES if any(o.lang == lang for o in report.outcomes)]
    blocks = []
    for split in report.splits():
        columns: list[tuple[str, Scores]] = [
            (lang, report.scores(split, lang)) for lang in languages
        ]
        columns.append(("all", report.scores(split)))
        header = ["", *(f"{name} ({s.questions})" for name, s in columns)]
        lines = [header]
        for label, get in _TABLE_ROWS:
            lines.append([label, *(_cell(get(s)) for _, s in columns)])
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        text = [f"split {split} · model {report.model or 'offline'}"]
        for line in lines:
            text.append(
                "  ".join(
                    cell.ljust(w) if i == 0 else cell.rjust(w)
                    for i, (cell, w) in enumerate(zip(line, widths, strict=True))
                ).rstrip()
            )
        blocks.append("\n".join(text))
    return "\n\n".join(blocks)


# ---------------------------------------------------------------------------------- running
def load_questions(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def parse_split(value: str) -> SplitChoice:
    if value == "dev":
        return "dev"
    if value == "test":
        return "test"
    if value == "all":
        return "all"
    raise ValueError(f"unknown split {value!r}: use dev, test or all")


def select(
    rows: Sequence[dict[str, Any]], split: SplitChoice = "all", limit: int | None = None
) -> list[dict[str, Any]]:
    chosen = [r for r in rows if split == "all" or r.get("split") == split]
    return chosen[:limit] if limit is not None else chosen


def eval_settings(settings: Settings, model: str = "") -> Settings:
    """The settings of an evaluation run: nothing persisted, no forecasts, no silent fallback."""
    update: dict[str, Any] = {
        "checkpointer": "memory",
        "weather_base_url": "http://127.0.0.1:9/v1",
        "weather_timeout": 0.2,
        "llm_fallbacks": [],
    }
    if not model:
        update["llm_provider"] = "offline"
    return settings.model_copy(update=update)


def eval_deps(settings: Settings, base: GraphDeps | None) -> GraphDeps:
    """Graph services over `settings`, reusing the caller's embedder, index and router."""
    return GraphDeps(settings) if base is None else base.sharing(settings)


async def _run_row(
    engine: Engine, deps: GraphDeps, row: dict[str, Any], context: Context
) -> Outcome:
    owner = Owner(EVAL_PARTNER, f"eval-{row['id']}")
    thread_id: str | None = None
    result: TurnResult | None = None
    error: str | None = None
    user_turns = 0
    try:
        for message in [*(row.get("history") or []), row["question"]]:
            result = await engine.invoke(TurnRequest(message, owner, thread_id, context=context))
            thread_id = result.thread_id
    except AlimError as exc:
        result, error = None, f"{exc.code}: {exc.message}"
    if thread_id is not None:
        _, messages = await engine.history(owner, thread_id)
        user_turns = sum(1 for m in messages if m.get("role") == "user")
    top3: list[str] | None = None
    if row.get("expected_groups") and row["kind"] != "followup":
        hits = deps.index().search(row["question"], SearchOptions(k=3))
        top3 = [h.chunk.group for h in hits]
    return judge(row, result, user_turns=user_turns, top3=top3, error=error)


async def evaluate(
    path: Path,
    settings: Settings,
    deps: GraphDeps | None = None,
    *,
    split: SplitChoice = "all",
    model: str = "",
    limit: int | None = None,
) -> EvalReport:
    """Run the rows of `path` (those of `split`, the first `limit`) and judge their answers.

    `model` is a `Context.model` choice (`groq`, `openai:gpt-4o-mini`…); empty: the offline
    model. Fallbacks are off either way, so a failing provider shows up as errors; a model that
    is unknown or not configured raises (ConfigError, InvalidRequest) before any row runs."""
    settings = eval_settings(settings, model)
    deps = eval_deps(settings, deps)
    if model:  # an unknown or unconfigured model fails here, not once per row
        ModelChain.for_choice(model, settings, deps.models)
    context = Context(model=model, human_handoff=False)
    report = EvalReport(split=split, model=model)
    rows = select(load_questions(path), split, limit)
    async with Engine.open(settings, deps) as engine:
        for row in rows:
            report.outcomes.append(await _run_row(engine, deps, row, context))
    return report
