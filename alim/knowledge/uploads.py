"""Turn an uploaded file (.md, .txt, .pdf) into an article's title, language and text."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

from alim.errors import AlimError, InvalidRequest
from alim.knowledge.documents import split_front_matter
from alim.text import detect_language

SUPPORTED = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}
MAX_CHARS = 200_000
"""Text an upload may hold once extracted: the JSON ingest's limit (a small PDF can expand)."""
MAX_PDF_PAGES = 300


def _too_large() -> InvalidRequest:
    return InvalidRequest(
        f"the document's text is longer than {MAX_CHARS:,} characters", code="document_too_large"
    )


class UnsupportedDocument(AlimError):
    code = "unsupported_document"
    status = 415


@dataclass(frozen=True)
class Document:
    title: str
    content: str
    language: str
    tags: tuple[str, ...] = ()
    topic: str = ""


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the file is not UTF-8 text", code="invalid_document") from exc


def _pdf_text(data: bytes) -> str:
    """The PDF's text, page by page, stopping as soon as it passes MAX_CHARS."""
    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if len(reader.pages) > MAX_PDF_PAGES:
            raise InvalidRequest(
                f"the PDF has more than {MAX_PDF_PAGES} pages", code="document_too_large"
            )
        pages: list[str] = []
        size = 0
        for page in reader.pages:
            text = (page.extract_text() or "").strip()
            size += len(text)
            if size > MAX_CHARS:
                raise _too_large()
            pages.append(text)
        return "\n\n".join(pages)
    except LimitReachedError as exc:
        raise _too_large() from exc
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest("the PDF could not be read", code="invalid_document") from exc


def parse_upload(
    filename: str,
    data: bytes,
    *,
    title: str | None = None,
    language: str | None = None,
    tags: list[str] | None = None,
) -> Document:
    suffix = PurePath(filename or "").suffix.lower()
    kind = SUPPORTED.get(suffix)
    if kind is None:
        raise UnsupportedDocument(
            f"unsupported file type {suffix or '(none)'}: use .md, .txt or .pdf"
        )
    if not data.strip():
        raise InvalidRequest("the file is empty", code="empty_document")
    text = _pdf_text(data) if kind == "pdf" else _decode(data)
    if len(text) > MAX_CHARS:
        raise _too_large()
    if "\x00" in text:
        raise InvalidRequest("the file contains NUL characters", code="invalid_document")
    topic = ""
    if kind == "markdown" and text.startswith("---"):
        # Front matter may supply title, language, tags, topic; the form's fields win, and the
        # server assigns the id whatever the file says.
        meta, text = split_front_matter(text, source=filename)
        title = title or meta.get("title") or None
        language = language or meta.get("language") or None
        tags = tags or [t.strip() for t in meta.get("tags", "").split(",") if t.strip()]
        topic = meta.get("topic", "")
    text = text.strip()
    if not text:
        raise InvalidRequest("no text could be extracted", code="empty_document")
    first, _, rest = text.partition("\n")
    if not title:
        # The first line becomes the title and is not repeated in the text (unless it is all).
        title = first.lstrip("#").strip()[:120] or PurePath(filename).stem
        text = rest.strip() or text
    return Document(
        title=title,
        content=text,
        language=language or detect_language(text),
        tags=tuple(tags or ()),
        topic=topic,
    )
