"""`/api/v1/documents`: uploads of Markdown, text, PDF, DOCX and HTML into a dataset, their text
and chunks, deletion at once, replacement by `external_id`; a PDF's citation names the right
page; hostile uploads (a DOCX zip bomb, a 10,000-page PDF, binary named .md, an empty file) get
their stable codes and the server keeps answering; a small PDF slow to read is stopped at the
parse budget (its worker process killed)."""

from __future__ import annotations

import io
import multiprocessing
import os
import time
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alim.settings import Settings
from tests.api.helpers import api_client, ask, assert_error, new_user, running_app
from tests.support.pdf import pdf_file

DOCUMENTS = "/api/v1/documents"
WORD = "Qorvaxin"  # made up: in no bundled article
PAGES = [
    ["Cotton growing guide", "Cotton seeds are sown in April when the soil warms up."],
    ["Irrigate cotton every ten days in July and August with drip lines."],
    [f"Spray {WORD} on cotton leaves in June against the bollworm, two litres per hectare."],
]
QUESTION = f"When should I spray {WORD} on cotton?"


def pdf(pages: list[list[str]]) -> bytes:
    """A valid PDF with one page per item, each showing its lines (ASCII) in Helvetica."""
    n = len(pages)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)), n),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        shown = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
        stream = f"BT /F1 12 Tf 72 712 Td {shown} ET".encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    return pdf_file(objects)


def docx(paragraphs: list[str]) -> bytes:
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    xml = f'<?xml version="1.0"?><w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", xml)
    return buffer.getvalue()


def zip_bomb(expanded: int = 1 << 30) -> bytes:
    """A DOCX-looking archive whose document part expands to `expanded` bytes (1 GB)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            block = b"<w:t>" + b"a" * (1 << 20) + b"</w:t>"
            for _ in range(expanded // len(block)):
                part.write(block)
    return buffer.getvalue()


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    key, _ = await app.state.keys.create(new_user("docs-partner"), ["chat", "admin"])
    async with api_client(app, key) as c:
        yield c


async def upload(client: httpx.AsyncClient, name: str, data: bytes, **form: str) -> httpx.Response:
    return await client.post(DOCUMENTS, files={"file": (name, data)}, data=form)


async def uploaded(client: httpx.AsyncClient, name: str, data: bytes, **form: str) -> Any:
    response = await upload(client, name, data, **form)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_pdf_citation_names_the_page_and_the_chunk(admin: httpx.AsyncClient) -> None:
    doc = await uploaded(admin, "cotton.pdf", pdf(PAGES), language="en")
    assert doc["metadata"]["file_type"] == "pdf"
    assert doc["metadata"]["page_count"] == 3
    assert doc["filename"] == "cotton.pdf"

    body = await ask(admin, QUESTION, new_user())
    source = body["sources"][0]
    assert source["document_id"] == doc["id"]
    assert source["dataset_id"] == doc["dataset_id"]
    assert source["page_number"] == 3
    chunk = (await admin.get(f"{DOCUMENTS}/{doc['id']}/chunks/{source['chunk_index']}")).json()
    assert WORD in chunk["content"]
    assert chunk["metadata"]["page_number"] == 3
    assert chunk["metadata"]["total_chunks"] == doc["metadata"]["total_chunks"]

    full = (await admin.get(f"{DOCUMENTS}/{doc['id']}")).json()
    assert WORD in full["content"] and "April" in full["content"]
    past = await admin.get(f"{DOCUMENTS}/{doc['id']}/chunks/{doc['metadata']['total_chunks']}")
    assert_error(past, 404, "chunk_not_found")


async def test_docx_html_and_markdown_are_read(admin: httpx.AsyncClient) -> None:
    word = await uploaded(
        admin,
        "guide.docx",
        docx([f"{WORD} guide", f"Spray {WORD} on cotton in June, two litres per hectare."]),
        language="en",
    )
    assert word["metadata"]["file_type"] == "docx"
    page = (
        "<html><head><title>Fig care</title><script>alert('x')</script></head><body>"
        "<p>Prune fig trees in late winter &amp; remove dead wood.</p><p>Water figs weekly "
        "in summer.</p></body></html>"
    )
    html = await uploaded(admin, "figs.html", page.encode(), language="en")
    html_doc = (await admin.get(f"{DOCUMENTS}/{html['id']}")).json()
    assert html_doc["title"] == "Fig care"
    assert "alert" not in html_doc["content"] and "& remove" in html_doc["content"]
    text = "# Nar\n\nNar ağaclarını payızda budayın, nar kollarını qışda örtün və suvarın.\n"
    md = await uploaded(admin, "nar.md", text.encode())
    assert md["metadata"]["file_type"] == "markdown" and md["title"] == "Nar"
    assert (await ask(admin, QUESTION, new_user()))["sources"][0]["id"] == word["id"]


async def test_delete_replace_and_dedupe(admin: httpx.AsyncClient, app: FastAPI) -> None:
    data = pdf(PAGES)
    first = await uploaded(admin, "cotton.pdf", data, external_id="cotton-2025")
    same = await uploaded(admin, "cotton-copy.pdf", data, external_id="cotton-2025")
    assert same["id"] == first["id"] and same["created"] is False

    changed = pdf([*PAGES[:2], [f"Spray {WORD} on cotton leaves in May, one litre."]])
    second = await uploaded(admin, "cotton.pdf", changed, external_id="cotton-2025")
    assert second["id"] != first["id"] and second["created"] is True
    assert_error(await admin.get(f"{DOCUMENTS}/{first['id']}"), 404, "document_not_found")
    assert (await ask(admin, QUESTION, new_user()))["sources"][0]["id"] == second["id"]

    other_key, _ = await app.state.keys.create(new_user("other"), ["chat", "admin"])
    async with api_client(app, other_key) as other:
        assert_error(await other.get(f"{DOCUMENTS}/{second['id']}"), 404, "document_not_found")
        assert_error(await other.delete(f"{DOCUMENTS}/{second['id']}"), 404, "document_not_found")
        chunk = await other.get(f"{DOCUMENTS}/{second['id']}/chunks/0")
        assert_error(chunk, 404, "document_not_found")

    assert (await admin.delete(f"{DOCUMENTS}/{second['id']}")).status_code == 204
    assert second["id"] not in [
        s["id"] for s in (await ask(admin, QUESTION, new_user()))["sources"]
    ]
    assert_error(await admin.get(f"{DOCUMENTS}/{second['id']}"), 404, "document_not_found")


@pytest.mark.parametrize("backend", ["sqlite"])  # parsing does not depend on the store
async def test_hostile_uploads_get_their_codes_and_the_server_keeps_answering(
    admin: httpx.AsyncClient,
) -> None:
    started = time.monotonic()
    bomb = zip_bomb()
    assert len(bomb) < 5_000_000
    cases = [
        ("report.docx", bomb, 422, "document_too_large"),
        ("huge.pdf", pdf([["p"]] * 10_000), 422, "document_too_large"),
        ("notes.md", os.urandom(4096), 422, "invalid_document"),
        ("empty.txt", b"", 422, "empty_document"),
    ]
    for name, data, status, code in cases:
        assert_error(await upload(admin, name, data), status, code)
    entity = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">]><w:document '
        b'xmlns:w="x"><w:body><w:p><w:r><w:t>&a;</w:t></w:r></w:p></w:body></w:document>'
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("word/document.xml", entity)
    assert_error(await upload(admin, "entity.docx", buffer.getvalue()), 422, "invalid_document")
    assert_error(await upload(admin, "x.xlsx", b"PK"), 415, "unsupported_document")
    assert time.monotonic() - started < 60

    assert (await admin.get("/health")).status_code == 200
    body = await ask(admin, "Fermada susuzluq var, nə edim?", new_user())
    assert body["response"].strip() and body["sources"]


def slow_pdf(pages: int) -> bytes:
    """A small PDF (~2 KB a page) that is slow to read: each page's content stream inflates
    into a megabyte of empty text blocks (`BT /F1 1 Tf ET`), each parsed one by one."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>"
        % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(pages)), pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i in range(pages):
        stream = zlib.compress(b"%d 0 0 1 0 0 cm " % (i + 1) + b"BT /F1 1 Tf ET " * 65_536, 9)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream"
        )
    return pdf_file(objects)


@pytest.mark.parametrize("backend", ["sqlite"])  # parsing does not depend on the store
async def test_a_small_pdf_slow_to_read_is_stopped_at_the_budget(
    api_settings_factory: Callable[..., Settings],
) -> None:
    budget = 1.5
    data = slow_pdf(100)  # ~0.2 s a page on one core: some 20 s to read in full
    assert len(data) < 300_000
    async with running_app(api_settings_factory(upload_parse_seconds=budget)) as app:
        key, _ = await app.state.keys.create(new_user("docs-partner"), ["chat", "admin"])
        async with api_client(app, key) as admin:
            started = time.monotonic()
            refused = await upload(admin, "slow.pdf", data)
            took = time.monotonic() - started
            assert_error(refused, 422, "document_too_slow")
            assert budget <= took < budget + 3, took
            # The worker was killed, not left reading in the background.
            assert multiprocessing.active_children() == []
            # A good upload is read (in a worker too) and the server goes on answering.
            good = await uploaded(admin, "cotton.pdf", pdf(PAGES))
            assert good["metadata"]["page_count"] == 3
            assert (await admin.get("/health")).status_code == 200
