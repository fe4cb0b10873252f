"""`/api/v1/knowledge` (admin scope): articles added as JSON or uploaded as .md/.txt/.pdf are
searchable at once, listed, fetched and deleted; bad uploads get stable error codes; questions keep
being answered during an ingest; an ingest embeds only the new article and survives a restart."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from alim.knowledge.documents import content_hash, load_articles
from alim.knowledge.uploads import MAX_CHARS
from alim.settings import Settings
from api.app import create_app
from engine import GraphDeps
from tests.api.helpers import api_client, ask, assert_error, new_user, running_app
from tests.conftest import FIXTURE_KB, make_settings
from tests.support.fakes import CountingEmbeddings, HashingEmbeddings
from tests.support.pdf import pdf_file

KNOWLEDGE = "/api/v1/knowledge"
BUNDLED_IDS = {"drought.az", "drought.en", "frost.en", "wheat.ru"}  # tests/fixtures/kb

SAFFRON: dict[str, Any] = {
    "title": "Zəfəran soğanlarının əkilməsi",
    "content": (
        "Zəfəran soğanlarını avqustun sonunda, 10 sm dərinlikdə, yüngül və quru torpağa əkin. "
        "Zəfəran soğanları arasında 10 sm məsafə saxlayın. Zəfəran payızda çiçəkləyir; "
        "çiçəkləri səhər tezdən yığın və dişcikləri kölgədə qurudun."
    ),
    "language": "az",
    "tags": ["zəfəran", "ədviyyat"],
    "topic": "crops",
}
SAFFRON_QUESTION = "Zəfəran soğanlarını nə vaxt və necə əkim?"

MD_PLAIN = (
    "# Kivi tinglərinin budanması\n\n"
    "Kivi tinglərini qışda, tumurcuqlar oyanmamış budayın. Kivi tənəyində hər qolda "
    "dörd-beş göz saxlayın, qalan kivi zoğlarını kəsin.\n"
)
MD_FRONT_MATTER = (
    "---\n"
    "id: partner-chosen-id\n"
    "title: Püstə ağaclarının suvarılması\n"
    "language: az\n"
    "topic: irrigation\n"
    "tags: püstə, suvarma\n"
    "---\n\n"
    "Püstə ağacları quraqlığa davamlıdır, amma püstə meyvəsi dolarkən iyul ayında "
    "iki-üç dəfə dərin suvarma tələb edir.\n"
)
TXT_ENGLISH = (
    "Blueberry soil acidity\n\n"
    "Blueberries need acidic soil with a pH between 4.5 and 5.5. Mix peat into the planting "
    "hole and mulch blueberry bushes with pine needles to keep the soil acidic.\n"
)
PDF_TEXT = "Zeferan soganlari avqustda 10 sm derinlikde ekilir"


def minimal_pdf(*lines: str) -> bytes:
    """A small valid PDF: one page showing `lines` (ASCII) in Helvetica, xref offsets computed."""
    shown = " ".join(f"({line}) Tj 0 -16 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 712 Td {shown} ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    return pdf_file(objects)


# ---------------------------------------------------------------------------------- helpers
async def add_json(client: httpx.AsyncClient, article: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(KNOWLEDGE, json=article)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def upload(client: httpx.AsyncClient, name: str, data: bytes, **form: str) -> httpx.Response:
    return await client.post(KNOWLEDGE, files={"file": (name, data)}, data=form)


async def first_source(client: httpx.AsyncClient, question: str) -> str | None:
    body = await ask(client, question, new_user())
    return body["sources"][0]["id"] if body["sources"] else None


async def source_ids(client: httpx.AsyncClient, question: str) -> list[str]:
    body = await ask(client, question, new_user())
    return [s["id"] for s in body["sources"]]


async def listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(KNOWLEDGE, params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def client(app: FastAPI) -> Any:
    """A partner of its own per test: its articles are its own (the Postgres database is
    shared by the session's tests)."""
    key, _ = await app.state.keys.create(new_user("kb-partner"), ["chat", "admin"])
    async with api_client(app, key) as c:
        yield c


@pytest.fixture
async def chat_only(app: FastAPI) -> Any:
    key, _ = await app.state.keys.create(new_user("chat-partner"), ["chat"])
    async with api_client(app, key) as c:
        yield c


# ---------------------------------------------------------------------------------- adding
async def test_json_article_is_created_and_answers_the_next_question(
    client: httpx.AsyncClient,
) -> None:
    created = await add_json(client, SAFFRON)

    assert created["id"].startswith("kb-")
    assert created["source"] == "ingested"
    assert created["title"] == SAFFRON["title"]
    assert created["language"] == "az"
    assert created["topic"] == "crops"
    assert created["tags"] == SAFFRON["tags"]
    assert created["indexed"] is True
    assert created["id"] not in BUNDLED_IDS

    body = await ask(client, SAFFRON_QUESTION, new_user())
    assert body["route"] == "agronomy"
    assert body["sources"][0]["id"] == created["id"]
    assert body["sources"][0]["title"] == SAFFRON["title"]
    assert "avqust" in body["response"]


async def test_markup_in_an_article_is_stripped_before_it_can_reach_a_farmer_s_screen(
    client: httpx.AsyncClient,
) -> None:
    """Partner apps render answers as Markdown or HTML: stored markup would run there."""
    hostile = {
        **SAFFRON,
        "title": "Zəfəran <b>soğanları</b>",
        "content": SAFFRON["content"]
        + ' <script>alert("x")</script><img src=x onerror=alert(1)> '
        + "[bax](javascript:alert(1)) <!-- gizli -->",
    }
    created = await add_json(client, hostile)
    stored = (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()
    assert created["title"] == "Zəfəran soğanları"
    for piece in ("<script", "alert", "onerror", "<img", "javascript:", "<!--", "gizli"):
        assert piece not in stored["content"], piece
    assert "avqustun sonunda" in stored["content"] and "[bax]" in stored["content"]
    body = await ask(client, SAFFRON_QUESTION, new_user())
    assert "<" not in body["response"] and "alert" not in body["response"]


async def test_markdown_upload_without_front_matter_takes_title_from_first_line(
    client: httpx.AsyncClient,
) -> None:
    response = await upload(client, "kivi.md", MD_PLAIN.encode())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == "Kivi tinglərinin budanması"
    assert created["language"] == "az"
    assert created["source"] == "ingested"
    assert await first_source(client, "Kivi tinglərini nə vaxt budayım?") == created["id"]


async def test_markdown_upload_with_front_matter_keeps_its_metadata(
    client: httpx.AsyncClient,
) -> None:
    response = await upload(client, "puste.md", MD_FRONT_MATTER.encode())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == "Püstə ağaclarının suvarılması"
    assert created["language"] == "az"
    assert created["topic"] == "irrigation"
    assert created["tags"] == ["püstə", "suvarma"]
    assert created["id"] != "partner-chosen-id"  # ids are the server's
    fetched = (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()
    assert "---" not in fetched["content"]  # the front matter is metadata, not text
    assert fetched["content"].startswith("Püstə ağacları quraqlığa davamlıdır")
    assert await first_source(client, "Püstə ağaclarını nə vaxt suvarım?") == created["id"]


@pytest.mark.parametrize(
    ("front_matter", "form"),
    [
        ("title: Püstə ağaclarının suvarılması\nlanguage: az\ntags: püstə", {}),
        ("id: puste\ntitle: Püstə ağaclarının suvarılması\ntags: püstə", {"language": "az"}),
    ],
    ids=["no-id", "language-from-form"],
)
async def test_markdown_front_matter_needs_no_id(
    client: httpx.AsyncClient, front_matter: str, form: dict[str, str]
) -> None:
    text = f"---\n{front_matter}\n---\n\nPüstə ağacları iyul ayında iki-üç dəfə suvarılır.\n"
    response = await upload(client, "puste.md", text.encode(), **form)

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["title"], created["language"], created["tags"]) == (
        "Püstə ağaclarının suvarılması",
        "az",
        ["püstə"],
    )


async def test_text_upload_detects_its_language(client: httpx.AsyncClient) -> None:
    response = await upload(client, "blueberries.txt", TXT_ENGLISH.encode())

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == "Blueberry soil acidity"
    assert created["language"] == "en"
    assert await first_source(client, "What soil pH do blueberries need?") == created["id"]


async def test_form_fields_override_title_language_and_tags(client: httpx.AsyncClient) -> None:
    response = await upload(
        client, "notes.txt", TXT_ENGLISH.encode(), title="Qaragilə", language="en", tags="a, b"
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["title"], created["language"], created["tags"]) == (
        "Qaragilə",
        "en",
        ["a", "b"],
    )


def test_the_handmade_pdf_is_a_real_pdf() -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(minimal_pdf(PDF_TEXT)))
    assert len(reader.pages) == 1
    assert reader.pages[0].extract_text().strip() == PDF_TEXT
    two = PdfReader(io.BytesIO(minimal_pdf("First line", "Second line")))
    assert two.pages[0].extract_text().split() == ["First", "line", "Second", "line"]


async def test_pdf_upload_is_searchable(client: httpx.AsyncClient) -> None:
    title = "Saffron corm planting"
    text = "Plant saffron corms in late August, 10 cm deep, in light and dry soil."
    response = await upload(client, "zeferan.pdf", minimal_pdf(title, text))

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == title
    assert created["language"] == "en"
    fetched = (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()
    assert fetched["content"] == text
    assert await first_source(client, "When should I plant saffron corms?") == created["id"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("zeferan.pdf", minimal_pdf(PDF_TEXT)),
        ("zeferan.txt", PDF_TEXT.encode()),
        ("zeferan.md", f"# {PDF_TEXT}\n".encode()),
    ],
    ids=["pdf", "txt", "md"],
)
async def test_one_line_document_upload_is_accepted_and_searchable(
    client: httpx.AsyncClient, name: str, data: bytes
) -> None:
    response = await upload(client, name, data)

    assert response.status_code == 201, response.text
    created = response.json()
    fetched = (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()
    assert PDF_TEXT in f"{fetched['title']} {fetched['content']}"
    assert await first_source(client, "Zeferan sogan ne vaxt ekilir?") == created["id"]


# ---------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("report.xlsx", b"PK\x03\x04 not for us", 415, "unsupported_document"),
        ("report.docx", b"PK\x03\x04 not a zip", 422, "invalid_document"),
        ("no-extension", b"some text", 415, "unsupported_document"),
        ("empty.md", b"", 422, "empty_document"),
        ("blank.txt", b"  \n\n ", 422, "empty_document"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n", 422, "invalid_document"),
        ("latin1.txt", "Kənd təsərrüfatı".encode("utf-16"), 422, "invalid_document"),
    ],
    ids=["xlsx", "broken-docx", "no-extension", "empty", "blank", "garbage-pdf", "not-utf8"],
)
async def test_bad_uploads_are_refused_with_a_code(
    client: httpx.AsyncClient, name: str, data: bytes, status: int, code: str
) -> None:
    before = (await listing(client))["total"]

    assert_error(await upload(client, name, data), status, code)
    assert (await listing(client))["total"] == before


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("0", "no_letters"),
        ("12 345 678 -- 9.0 / 11 // 2024", "no_letters"),
        ("Ərik sortu", "too_short"),
        ("asd qwe zxc rty fgh vbn uio", "unsupported_language"),
        (
            "Der Weizen wird im Herbst gesät, wenn der Boden feucht genug ist und nicht friert.",
            "unsupported_language",
        ),
        (
            "Buğdanı payızda səpin" + "\x01\x02\x03" * 20 + " torpaq nəm olmalıdır",
            "invalid_document",
        ),
    ],
    ids=["zero", "digits", "two-words", "gibberish", "german", "binary"],
)
async def test_what_is_not_an_article_is_refused_and_nothing_is_indexed(
    client: httpx.AsyncClient, content: str, code: str
) -> None:
    before = (await listing(client))["total"]
    chunks_before = (await client.get("/ready")).json()["checks"]["index"]

    assert_error(await client.post(KNOWLEDGE, json={**SAFFRON, "content": content}), 422, code)
    assert_error(await upload(client, "note.txt", f"Qeyd\n{content}".encode()), 422, code)
    assert (await listing(client))["total"] == before
    assert (await client.get("/ready")).json()["checks"]["index"] == chunks_before


async def test_a_short_note_in_azerbaijani_typed_without_its_letters_is_accepted(
    client: httpx.AsyncClient,
) -> None:
    # Identifiers read letterless Azerbaijani as Turkish or Uzbek; it is still accepted.
    note = {**SAFFRON, "content": "Zeferan soganlarini avqustun sonunda quru torpaga ekin."}
    created = await add_json(client, note)
    assert created["language"] == "az"


async def test_a_title_with_three_dashes_is_kept(client: httpx.AsyncClient) -> None:
    title = "Zəfəran --- əkin və yığım"
    response = await client.post(KNOWLEDGE, json={**SAFFRON, "title": title})

    assert response.status_code == 201, response.text
    created = response.json()
    assert created["title"] == title
    assert (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()["title"] == title


async def test_multipart_without_a_file_part_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(KNOWLEDGE, files={"title": (None, "Başlıq")})

    assert_error(response, 422, "missing_file")


async def test_other_content_types_are_415(client: httpx.AsyncClient) -> None:
    response = await client.post(
        KNOWLEDGE, content=b"title=x", headers={"content-type": "text/plain"}
    )

    assert_error(response, 415, "unsupported_document")


@pytest.mark.parametrize(
    "article",
    [
        {**SAFFRON, "language": "de"},
        {**SAFFRON, "title": ""},
        {**SAFFRON, "content": "   "},
        {**SAFFRON, "unexpected": 1},
    ],
    ids=["language", "empty-title", "blank-content", "unknown-field"],
)
async def test_invalid_json_articles_are_422(
    client: httpx.AsyncClient, article: dict[str, Any]
) -> None:
    response = await client.post(KNOWLEDGE, json=article)

    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"validation_error", "empty_document"}


async def test_upload_over_the_limit_is_413(api_settings_factory: Callable[..., Settings]) -> None:
    async with running_app(api_settings_factory(max_upload_bytes=2048)) as app:
        key, _ = await app.state.keys.create(new_user("kb-partner"), ["admin"])
        async with api_client(app, key) as client:
            too_big = ("Zəfəran soğanı. " * 300).encode()
            assert len(too_big) > 2048
            assert_error(await upload(client, "big.txt", too_big), 413, "payload_too_large")

            small = await upload(client, "small.txt", TXT_ENGLISH.encode())
            assert small.status_code == 201, small.text
            assert (await listing(client, source="ingested"))["total"] == 1


async def test_admin_scope_is_required(
    client: httpx.AsyncClient, chat_only: httpx.AsyncClient
) -> None:
    created = await add_json(client, SAFFRON)

    assert_error(await chat_only.post(KNOWLEDGE, json=SAFFRON), 403, "insufficient_scope")
    assert_error(
        await chat_only.post(KNOWLEDGE, files={"file": ("a.md", MD_PLAIN.encode())}),
        403,
        "insufficient_scope",
    )
    assert_error(await chat_only.get(KNOWLEDGE), 403, "insufficient_scope")
    assert_error(await chat_only.get(f"{KNOWLEDGE}/{created['id']}"), 403, "insufficient_scope")
    assert_error(await chat_only.delete(f"{KNOWLEDGE}/{created['id']}"), 403, "insufficient_scope")
    assert (await client.get(f"{KNOWLEDGE}/{created['id']}")).status_code == 200


async def test_no_key_is_401(app: FastAPI) -> None:
    async with api_client(app, key=None) as anonymous:
        assert_error(await anonymous.get(KNOWLEDGE), 401, "invalid_api_key")


# ---------------------------------------------------------------------------------- browsing
async def test_listing_pages_and_filters_by_source(client: httpx.AsyncClient) -> None:
    added = [(await add_json(client, {**SAFFRON, "title": f"Zəfəran {n}"}))["id"] for n in range(3)]

    everything = await listing(client, limit=200)
    assert everything["total"] == len(BUNDLED_IDS) + 3
    ids = [a["id"] for a in everything["articles"]]
    assert set(ids) == BUNDLED_IDS | set(added)
    assert all(a["content"] is None for a in everything["articles"])

    paged: list[str] = []
    for offset in range(0, everything["total"], 2):
        page = await listing(client, limit=2, offset=offset)
        assert page["total"] == everything["total"]
        assert len(page["articles"]) <= 2
        paged += [a["id"] for a in page["articles"]]
    assert paged == ids
    assert (await listing(client, offset=100))["articles"] == []

    ingested = await listing(client, source="ingested")
    assert ingested["total"] == 3
    assert {a["id"] for a in ingested["articles"]} == set(added)
    assert {a["source"] for a in ingested["articles"]} == {"ingested"}
    bundled = await listing(client, source="bundled")
    assert {a["id"] for a in bundled["articles"]} == BUNDLED_IDS
    assert {a["source"] for a in bundled["articles"]} == {"bundled"}


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 201}, {"offset": -1}, {"source": "elsewhere"}]
)
async def test_bad_listing_parameters_are_422(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    assert_error(await client.get(KNOWLEDGE, params=params), 422, "validation_error")


async def test_get_by_id_returns_the_content(client: httpx.AsyncClient) -> None:
    created = await add_json(client, SAFFRON)

    response = await client.get(f"{KNOWLEDGE}/{created['id']}")
    assert response.status_code == 200, response.text
    article = response.json()
    assert article["content"] == SAFFRON["content"]
    assert article["source"] == "ingested"
    assert article["title"] == SAFFRON["title"]

    bundled = (await client.get(f"{KNOWLEDGE}/frost.en")).json()
    assert bundled["source"] == "bundled"
    assert bundled["content"]

    assert_error(await client.get(f"{KNOWLEDGE}/kb-missing-1234"), 404, "article_not_found")


# ---------------------------------------------------------------------------------- deleting
async def test_deleted_article_no_longer_answers(client: httpx.AsyncClient) -> None:
    created = await add_json(client, SAFFRON)
    assert created["id"] in await source_ids(client, SAFFRON_QUESTION)

    response = await client.delete(f"{KNOWLEDGE}/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""

    assert created["id"] not in await source_ids(client, SAFFRON_QUESTION)
    assert_error(await client.get(f"{KNOWLEDGE}/{created['id']}"), 404, "article_not_found")
    assert (await listing(client, source="ingested"))["total"] == 0
    assert_error(await client.delete(f"{KNOWLEDGE}/{created['id']}"), 404, "article_not_found")


async def test_bundled_articles_cannot_be_deleted(client: httpx.AsyncClient) -> None:
    assert_error(await client.delete(f"{KNOWLEDGE}/frost.en"), 409, "bundled_article")

    assert (await client.get(f"{KNOWLEDGE}/frost.en")).status_code == 200
    question = "How do I protect my orchard from a spring frost?"
    assert "frost.en" in await source_ids(client, question)


# ---------------------------------------------------------------------------------- live ingest
async def test_questions_are_answered_while_an_article_is_ingested(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    service = app.state.deps.knowledge()
    long_content = "\n\n".join(
        f"Zəfəran sahəsi {n}: soğanları avqustda əkin, torpağı yumşaldın, alaq otlarını təmizləyin."
        for n in range(80)
    )

    async def question(n: int) -> dict[str, Any]:
        message = (
            "Fermada susuzluq var, nə edim?" if n % 2 else "How do I protect wheat from frost?"
        )
        return await ask(client, message, new_user())

    article, *answers = await asyncio.gather(
        asyncio.to_thread(
            lambda: service.ingest(title="Zəfəran sahələri", content=long_content, language="az")
        ),
        *(question(n) for n in range(8)),
    )

    assert len(answers) == 8
    for body in answers:
        assert body["route"] == "agronomy"
        assert body["response"].strip()
        assert body["sources"]
    assert (await client.get(f"{KNOWLEDGE}/{article.id}")).status_code == 200
    assert article.id in await source_ids(client, "Zəfəran sahəsində soğanları nə vaxt əkim?")


async def test_concurrent_ingests_all_land_in_the_index(client: httpx.AsyncClient) -> None:
    crops = ["Zəfəran", "Kivi", "Püstə", "Feyxoa", "Qaragilə"]
    created = await asyncio.gather(
        *(
            add_json(
                client,
                {
                    **SAFFRON,
                    "title": f"{crop} becərilməsi",
                    "content": f"{crop} tinglərini yazda əkin, {crop} kollarını həftədə bir "
                    f"dəfə suvarın, {crop} məhsulunu payızda yığın.",
                },
            )
            for crop in crops
        )
    )

    ids = {c["id"] for c in created}
    assert len(ids) == len(crops)
    assert {a["id"] for a in (await listing(client, source="ingested"))["articles"]} == ids
    for crop, article in zip(crops, created, strict=True):
        question = f"{crop} tinglərini nə vaxt əkim?"
        assert await first_source(client, question) == article["id"], crop


# ---------------------------------------------------------------------------------- persistence
async def test_ingest_embeds_only_the_new_article_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, checkpointer="sqlite")
    manifest_path = settings.resolved_index_dir / "manifest.json"

    first = CountingEmbeddings()
    app = create(settings, first)
    async with app.router.lifespan_context(app), api_client(app) as client:
        chunks_before = (await client.get("/ready")).json()["checks"]["index"]
        first.documents.clear()
        created = await add_json(client, SAFFRON)
        embedded = list(first.documents)
        chunks_after = (await client.get("/ready")).json()["checks"]["index"]

    # Only the new article's chunks ("title\ntext") and their sentences ("title: sentence") were
    # embedded (the bundled ones were not embedded again).
    chunk_texts = [t for t in embedded if t.startswith(SAFFRON["title"] + "\n")]
    sentence_texts = [t for t in embedded if t.startswith(SAFFRON["title"] + ": ")]
    assert chunk_texts and sentence_texts, "the new article was embedded"
    assert len(chunk_texts) + len(sentence_texts) == len(embedded), embedded
    assert chunk_count(chunks_after) - chunk_count(chunks_before) == len(chunk_texts)

    # The article lives in the store (alim.db), not in the bundled index's files.
    assert not (tmp_path / "knowledge").exists()
    manifest_text = manifest_path.read_text(encoding="utf-8")
    assert json.loads(manifest_text)["content_hash"] == content_hash(load_articles(FIXTURE_KB))

    # A new process on the same data directory: the article is there, loaded from the stored
    # vectors (nothing embedded again), the bundled index untouched.
    second = CountingEmbeddings()
    app = create(settings, second)
    async with app.router.lifespan_context(app), api_client(app) as client:
        listed = await listing(client, source="ingested")
        assert [a["id"] for a in listed["articles"]] == [created["id"]]
        body = await ask(client, SAFFRON_QUESTION, new_user())
        assert body["sources"][0]["id"] == created["id"]
        assert (await client.get("/ready")).json()["checks"]["index"] == chunks_after
    assert not any(SAFFRON["title"] in text for text in second.documents)
    assert manifest_path.read_text(encoding="utf-8") == manifest_text


def create(settings: Settings, embeddings: HashingEmbeddings) -> FastAPI:
    return create_app(settings, GraphDeps(settings, _embeddings=embeddings))


def chunk_count(index_check: str) -> int:
    """`ok (N chunks)` from /ready → N."""
    assert index_check.startswith("ok ("), index_check
    return int(index_check.removeprefix("ok (").split()[0])


# ------------------------------------------------------------------- front-matter injection
@pytest.mark.parametrize(
    "change",
    [
        {"tags": ["zəfəran\nid: drought.en"]},
        {"tags": ["t\r\nlanguage: xx"]},
        {"title": "Zəfəran\u2028id: drought.en"},
        {"title": "Zəfəran\x85group: wheat"},
        {"topic": "crops\u2029id: drought.en"},
    ],
    ids=["tag-newline", "tag-crlf", "title-u2028", "title-x85", "topic-u2029"],
)
async def test_a_line_break_or_control_character_in_a_field_is_refused(
    client: httpx.AsyncClient, change: dict[str, Any]
) -> None:
    before = (await listing(client))["total"]
    assert_error(await client.post(KNOWLEDGE, json={**SAFFRON, **change}), 422, "invalid_field")
    assert (await listing(client))["total"] == before
    assert (await client.get(f"{KNOWLEDGE}/drought.en")).status_code == 200  # not overridden
    await add_json(client, SAFFRON)  # and ingest still works


async def test_front_matter_in_an_upload_cannot_set_another_language(
    client: httpx.AsyncClient,
) -> None:
    text = f"---\ntitle: Zəfəran\nlanguage: xx\n---\n\n{SAFFRON['content']}\n"
    assert_error(await upload(client, "z.md", text.encode()), 422, "validation_error")


async def test_titles_and_tags_with_colons_quotes_and_hashes_round_trip(
    client: httpx.AsyncClient,
) -> None:
    title = 'Zəfəran: "əkin" # və yığım --- id: x'
    created = await add_json(client, {**SAFFRON, "title": title, "tags": ["a: b", "#c"]})
    fetched = (await client.get(f"{KNOWLEDGE}/{created['id']}")).json()
    assert (fetched["title"], fetched["tags"]) == (title, ["a: b", "#c"])


async def test_extracted_text_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    sentence = "Zəfəran soğanlarını avqustun sonunda quru torpağa əkin. "
    text = "Zəfəran\n" + sentence * (MAX_CHARS // len(sentence) + 10)
    before = (await listing(client))["total"]
    assert_error(await upload(client, "big.txt", text.encode()), 422, "document_too_large")
    assert (await listing(client))["total"] == before
