"""What ingest refuses: text that is not an article a farmer could be quoted from.

A fuzzer's junk (a title "0", a few random characters) once ranked first for unrelated questions;
so an article needs MIN_WORDS words with letters, no binary noise, and must read as Azerbaijani,
English or Russian. Each refusal is a 422 with its own stable code, raised before anything is
written or embedded.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from html.parser import HTMLParser
from typing import Any

from alim.errors import InvalidRequest
from alim.vocab import LANGUAGES

MIN_WORDS = 6
MAX_CONTROL_SHARE = 0.005
"""Share of control characters (other than tabs and line breaks) above which text is binary."""
READ_AS = {"tr": "az", "uz": "az", "tk": "az"}
"""Azerbaijani typed without its own letters ("Zeferan soganlari avqustda ekilir") identifies as
a neighbouring Turkic language written in Latin letters; it is Azerbaijani here."""


@cache
def _identifier() -> Any:
    import py3langid  # loads its model: on first use, never at import

    return py3langid


def _words_with_letters(text: str) -> int:
    return sum(1 for w in text.split() if any(c.isalpha() for c in w))


def identified_language(text: str) -> str:
    """ISO 639-1 code of the text's language, as the identifier reads it (READ_AS applied)."""
    code = str(_identifier().classify(text)[0])
    return READ_AS.get(code, code)


def refuse_non_article(content: str) -> None:
    """Raise InvalidRequest (422) unless `content` can be an article's text."""
    if not any(c.isalpha() for c in content):
        raise InvalidRequest("the document has no letters, so no text", code="no_letters")
    control = sum(
        1 for c in content if unicodedata.category(c) == "Cc" and c not in "\t\n\r"
    ) + content.count("\ufffd")
    if control > MAX_CONTROL_SHARE * len(content):
        raise InvalidRequest(
            "the document looks like binary data, not text", code="invalid_document"
        )
    if _words_with_letters(content) < MIN_WORDS:
        raise InvalidRequest(
            f"the document is too short to be an article (at least {MIN_WORDS} words)",
            code="too_short",
        )
    language = identified_language(content)
    if language not in LANGUAGES:
        raise InvalidRequest(
            f"the document reads as {language!r}: articles are in Azerbaijani, English or Russian",
            code="unsupported_language",
        )


_TAG = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--")
_SCRIPT_LINK = re.compile(
    r"\]\(\s*(?:javascript|data|vbscript):(?:[^()]|\([^()]*\))*\)", re.IGNORECASE
)
_DROPPED_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "template"})


class _TextOnly(HTMLParser):
    """The text of HTML, without tags, comments, or what scripts and styles hold."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _DROPPED_WITH_CONTENT:
            self._skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_WITH_CONTENT and self._skipping:
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.handle_data(f"&{name};")  # kept as written: the article is Markdown, not HTML

    def handle_charref(self, name: str) -> None:
        self.handle_data(f"&#{name};")


def strip_markup(text: str) -> str:
    """An ingested article as plain Markdown: HTML tags, comments and scripts removed (partner
    apps render answers as Markdown or HTML, so stored markup would run there), and links to
    `javascript:`/`data:` URLs cut to their text. Text without markup comes back unchanged."""
    text = _SCRIPT_LINK.sub("]", text)
    if not _TAG.search(text):
        return text
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)
