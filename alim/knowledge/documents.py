"""Knowledge-base articles: Markdown files with a small `key: value` front matter.

```
---
id: wheat.az
group: wheat
title: Payızlıq buğdanın becərilməsi
language: az
topic: crops
tags: buğda, taxıl
---
# body…
```

A value may also be a JSON string literal (`title: "Zəfəran: əkin"`): what ALİM writes for
ingested articles (`front_matter`), so that no value can end its line or start another key.
Only `\n` ends a front-matter line (never `\u2028`, `\x85` or other Unicode breaks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from alim.errors import InvalidRequest

log = logging.getLogger(__name__)

REQUIRED_FIELDS = ("id", "title", "language")
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
"""Control characters and Unicode line/paragraph separators: never in a front-matter value."""


def has_breaks(value: str) -> bool:
    """Whether a one-line field (a title, a tag, a topic) holds a control or line-break char."""
    return bool(_BREAKS.search(value))


def front_matter(fields: dict[str, str]) -> str:
    """A front-matter block whose values are JSON string literals (escaped by json)."""
    lines = [f"{key}: {_quoted(value)}" for key, value in fields.items()]
    return "---\n" + "\n".join(lines) + "\n---\n"


def _quoted(value: str) -> str:
    """A JSON string literal with every control and line-break character escaped (json leaves
    U+0085, U+2028 and U+2029 as they are when letters are kept unescaped)."""
    return _BREAKS.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _value(raw: str, name: str) -> str:
    value = raw.strip()
    if value.startswith('"'):
        try:
            decoded = json.loads(value)
        except ValueError as exc:
            raise InvalidRequest(f"{name}: bad quoted front-matter value {value!r}") from exc
        if not isinstance(decoded, str):
            raise InvalidRequest(f"{name}: bad quoted front-matter value {value!r}")
        return decoded
    return value


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    language: str
    content: str
    group: str = ""
    topic: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    source: str = ""

    @property
    def group_id(self) -> str:
        """Articles that translate one another share a group (default: the id)."""
        return self.group or self.id


def split_front_matter(text: str, *, source: str = "") -> tuple[dict[str, str], str]:
    """(metadata, body) of a Markdown text that starts with a `---` front-matter block."""
    name = source or "article"
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if not lines or lines[0].strip() != "---":
        raise InvalidRequest(f"{name}: missing front matter")
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration as exc:
        raise InvalidRequest(f"{name}: unterminated front matter") from exc
    meta: dict[str, str] = {}
    for line in lines[1:end]:
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise InvalidRequest(f"{name}: bad front-matter line {line!r}")
        meta[key.strip().lower()] = _value(value, name)
    return meta, "\n".join(lines[end + 1 :]).strip()


def strip_title_heading(body: str, title: str) -> str:
    """Drop a leading `# Title` heading that repeats the title (kept as metadata)."""
    first, _, rest = body.partition("\n")
    if first.startswith("#") and first.lstrip("#").strip() == title:
        return rest.strip()
    return body


def parse_article(text: str, *, source: str = "") -> Article:
    """Parse one Markdown article with front matter; raise InvalidRequest if it is malformed."""
    meta, body = split_front_matter(text, source=source)
    missing = [f for f in REQUIRED_FIELDS if not meta.get(f)]
    if missing:
        raise InvalidRequest(f"{source or 'article'}: missing {', '.join(missing)}")
    body = strip_title_heading(body, meta["title"])
    if not body:
        raise InvalidRequest(f"{source or 'article'}: empty body")
    return Article(
        id=meta["id"],
        title=meta["title"],
        language=meta["language"],
        content=body,
        group=meta.get("group", ""),
        topic=meta.get("topic", ""),
        tags=tuple(t.strip() for t in meta.get("tags", "").split(",") if t.strip()),
        source=source,
    )


def bundled_kb_dir() -> Path:
    return Path(str(resources.files("alim") / "data" / "kb"))


def load_articles(directory: Path | None = None, *, skip_bad: bool = False) -> list[Article]:
    """All articles of a directory (default: the bundled knowledge base), sorted by id.

    `skip_bad`: a file that cannot be read as an article, or repeats an id, is logged and left
    out instead of failing the whole load (articles partners ingested: one bad file must not
    stop the server)."""
    directory = directory or bundled_kb_dir()
    articles: list[Article] = []
    for p in sorted(directory.glob("*.md")):
        try:
            article = parse_article(p.read_text(encoding="utf-8"), source=p.name)
        except (InvalidRequest, OSError, UnicodeDecodeError) as exc:
            if not skip_bad:
                raise
            log.error("skipping unreadable article file %s: %s", p.name, exc)
            continue
        if skip_bad and any(a.id == article.id for a in articles):
            log.error("skipping article file %s: it repeats the id %s", p.name, article.id)
            continue
        articles.append(article)
    ids = [a.id for a in articles]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InvalidRequest(f"duplicate article ids: {', '.join(dupes)}")
    return sorted(articles, key=lambda a: a.id)


def content_hash(articles: Iterable[Article]) -> str:
    """A stable hash of everything that affects the index."""
    h = hashlib.sha256()
    for a in sorted(articles, key=lambda a: a.id):
        for part in (a.id, a.title, a.language, a.group, a.topic, ",".join(a.tags), a.content):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
    return h.hexdigest()
