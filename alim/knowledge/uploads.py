"""Turn an uploaded file (.md, .txt, .pdf, .docx, .html) into an article's title, language and
text (with its pages, for a PDF).

Hostile files are refused before they cost much: a PDF with more than MAX_PDF_PAGES pages (its
page count is read before any text), text past MAX_CHARS (extraction stops there), a DOCX whose
parts would expand past MAX_DOCX_XML bytes or by more than MAX_ZIP_RATIO (a zip bomb: sizes are
checked before reading, and reading stops at the limit whatever the archive claims), XML with a
DTD (entity expansion), a binary file under a text name. Callers run this off the event loop."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from alim.errors import AlimError, InvalidRequest
from alim.knowledge.documents import split_front_matter
from alim.text import detect_language

SUPPORTED = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}
MAX_DOCX_XML = 20_000_000
"""Bytes the DOCX's document.xml may expand to (its text is far less: MAX_CHARS applies too)."""
MAX_ZIP_RATIO = 200
"""Expansion ratio of an archive member above which it is taken for a zip bomb."""
MAX_ZIP_MEMBERS = 2_000
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
    file_type: str = "text"
    pages: tuple[str, ...] | None = None
    """Each page's text (PDFs): chunks then carry page numbers."""


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidRequest("the file is not UTF-8 text", code="invalid_document") from exc


def _pdf_pages(data: bytes) -> list[str]:
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
        return pages
    except LimitReachedError as exc:
        raise _too_large() from exc
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest("the PDF could not be read", code="invalid_document") from exc


def _docx_text(data: bytes) -> str:
    """The text of a DOCX's main document part, paragraph by paragraph."""
    import zipfile
    from xml.etree.ElementTree import Element, ParseError, XMLPullParser

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        raise InvalidRequest("the DOCX could not be read", code="invalid_document") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise InvalidRequest("the DOCX has too many parts", code="invalid_document")
        try:
            info = archive.getinfo("word/document.xml")
        except KeyError as exc:
            raise InvalidRequest("the DOCX has no document part", code="invalid_document") from exc
        if info.file_size > MAX_DOCX_XML or info.file_size > MAX_ZIP_RATIO * max(
            info.compress_size, 1
        ):
            raise InvalidRequest("the DOCX expands too much to be read", code="document_too_large")
        parser: XMLPullParser[Element] = XMLPullParser(events=("end",))
        paragraphs: list[str] = []
        current: list[str] = []
        size = read = 0
        tail = b""
        try:
            with archive.open(info) as part:
                while block := part.read(65_536):
                    read += len(block)
                    if read > MAX_DOCX_XML:  # whatever the archive's directory claims
                        raise InvalidRequest(
                            "the DOCX expands too much to be read", code="document_too_large"
                        )
                    seen = tail + block  # a marker may straddle two blocks
                    tail = block[-16:]
                    if b"<!DOCTYPE" in seen or b"<!ENTITY" in seen:
                        raise InvalidRequest(
                            "the DOCX holds a DTD (refused)", code="invalid_document"
                        )
                    parser.feed(block)
                    for event in parser.read_events():
                        element: Any = event[-1]
                        if not isinstance(element, Element):
                            continue
                        tag = element.tag.rsplit("}", 1)[-1]
                        if tag == "t" and element.text:
                            current.append(element.text)
                        elif tag == "tab":
                            current.append("\t")
                        elif tag == "p":
                            paragraphs.append("".join(current))
                            size += len(paragraphs[-1])
                            current = []
                            if size > MAX_CHARS:
                                raise _too_large()
                        element.clear()
        except (ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InvalidRequest("the DOCX could not be read", code="invalid_document") from exc
    return "\n\n".join(p for p in paragraphs if p.strip())


def _html_text(data: bytes) -> tuple[str, str | None]:
    """(text, <title>) of an HTML page: tags, scripts and styles dropped, entities decoded."""
    import html
    import re

    from alim.knowledge.checks import strip_markup

    page = _decode(data)
    found = re.search(r"<title[^>]*>(.*?)</title>", page, re.IGNORECASE | re.DOTALL)
    title = " ".join(html.unescape(found.group(1)).split()) if found else None
    body = re.sub(r"<title[^>]*>.*?</title>", "", page, flags=re.IGNORECASE | re.DOTALL)
    body = re.sub(r"(?i)<\s*(br|/p|/div|/li|/h[1-6]|/tr)\b[^>]*>", "\n\n", body)
    text = html.unescape(strip_markup(body))
    text = "\n\n".join(" ".join(line.split()) for line in text.split("\n\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip(), title or None


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
            f"unsupported file type {suffix or '(none)'}: use .md, .txt, .pdf, .docx or .html"
        )
    if not data.strip():
        raise InvalidRequest("the file is empty", code="empty_document")
    pages: list[str] | None = None
    if kind == "pdf":
        pages = _pdf_pages(data)
        text = "\n\n".join(pages)
    elif kind == "docx":
        text = _docx_text(data)
    elif kind == "html":
        text, found_title = _html_text(data)
        title = title or found_title
    else:
        text = _decode(data)
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
        file_type=kind,
        pages=tuple(pages) if pages and any(p.strip() for p in pages) else None,
    )
