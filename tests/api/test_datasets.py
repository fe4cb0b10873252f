"""Datasets (`/api/v1/datasets`) and isolation between partners, over SQLite and PostgreSQL: a
partner's articles are cited in its own answers only (also for the same `user_id`), another
partner's datasets and documents are 404 to it, a chat request's `dataset_id` and
`include_bundled` (or, when it names none, the partner's assistant settings) choose what is
searched, and citations say where they come from."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import aconnect_sse

from tests.api.helpers import STREAM, api_client, ask, assert_error, history, new_user

ASSISTANT = "/api/v1/assistant"
DATASETS = "/api/v1/datasets"
KNOWLEDGE = "/api/v1/knowledge"
BUNDLED_IDS = {"drought.az", "drought.en", "frost.en", "wheat.ru"}  # tests/fixtures/kb

WORD = "Qorvaxin"  # made up: in no bundled article
SECRET: dict[str, Any] = {
    "title": f"{WORD} preparatı ilə pambığın qorunması",
    "content": (
        f"{WORD} preparatını pambıq sahəsinə iyun ayında, səhər tezdən çiləyin. {WORD} hər "
        f"hektara iki litr suda həll edilir. {WORD} çiləndikdən sonra üç gün sahəni suvarmayın."
    ),
    "language": "az",
    "topic": "pests",
}
QUESTION = f"{WORD} preparatını pambığa nə vaxt çiləyim?"
OTHER: dict[str, Any] = {
    "title": "Xurmanın qışda qorunması",
    "content": (
        "Xurma tinglərini qışda çuval bezi ilə bükün. Xurma ağacının dibinə saman sərin, "
        "xurma kökləri şaxtadan qorunsun."
    ),
    "language": "az",
}
OTHER_QUESTION = "Xurma tinglərini qışda necə qoruyum?"


@pytest.fixture
async def partners(app: FastAPI) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two partners (A, B) with admin and chat keys of their own."""
    keys = [
        (await app.state.keys.create(new_user(name), ["chat", "admin"]))[0]
        for name in ("partner-a", "partner-b")
    ]
    async with api_client(app, keys[0]) as a, api_client(app, keys[1]) as b:
        yield a, b


async def create_dataset(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(DATASETS, json={"name": "Pambıq", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def add(client: httpx.AsyncClient, article: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await client.post(KNOWLEDGE, json={**article, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def cited(body: dict[str, Any]) -> list[str]:
    return [s["id"] for s in body["sources"]]


async def stream_sources(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    async with aconnect_sse(client, "POST", STREAM, json=body) as source:
        assert source.response.status_code == 200
        events = [(sse.event, sse.data) async for sse in source.aiter_sse()]
    (data,) = [d for name, d in events if name == "sources"]
    return json.loads(data)  # type: ignore[no-any-return]


async def test_a_partners_article_is_cited_to_it_and_never_to_another(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = partners
    dataset = await create_dataset(b, description="B's own", language="az")
    doc = await add(b, SECRET, dataset_id=dataset["id"])
    assert doc["dataset_id"] == dataset["id"]
    user = new_user("farmer")  # the same end user id at both partners

    mine = await ask(b, QUESTION, user)
    assert mine["sources"][0]["id"] == doc["id"]
    assert mine["sources"][0] == {
        **mine["sources"][0],
        "document_id": doc["id"],
        "dataset_id": dataset["id"],
        "title": SECRET["title"],
        "chunk_index": 0,
        "page_number": None,
    }
    assert WORD in mine["response"]

    theirs = await ask(a, QUESTION, user)
    assert doc["id"] not in cited(theirs)
    assert WORD not in theirs["response"].replace(QUESTION, "")
    assert {s["dataset_id"] for s in theirs["sources"]} <= {"bundled"}
    streamed = await stream_sources(a, {"message": QUESTION, "user_id": user})
    assert doc["id"] not in [s["id"] for s in streamed["sources"]]

    # The `sources` event and the thread's history carry the citation too.
    streamed = await stream_sources(b, {"message": QUESTION, "user_id": user})
    assert streamed["sources"][0]["dataset_id"] == dataset["id"]
    messages = await history(b, mine["thread_id"], user)
    assert messages[-1]["sources"][0]["dataset_id"] == dataset["id"]
    assert messages[-1]["sources"][0]["document_id"] == doc["id"]


async def test_another_partners_datasets_and_documents_are_not_found(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = partners
    dataset = await create_dataset(b)
    doc = await add(b, SECRET, dataset_id=dataset["id"])
    user = new_user()

    listed = (await a.get(DATASETS)).json()["datasets"]
    assert [d["id"] for d in listed] == ["bundled"]
    assert listed[0]["read_only"] is True
    assert_error(await a.get(f"{DATASETS}/{dataset['id']}"), 404, "dataset_not_found")
    assert_error(await a.get(f"{DATASETS}/{dataset['id']}/documents"), 404, "dataset_not_found")
    assert_error(await a.delete(f"{DATASETS}/{dataset['id']}"), 404, "dataset_not_found")
    assert_error(await a.get(f"{KNOWLEDGE}/{doc['id']}"), 404, "article_not_found")
    assert_error(await a.delete(f"{KNOWLEDGE}/{doc['id']}"), 404, "article_not_found")
    assert doc["id"] not in {x["id"] for x in (await a.get(KNOWLEDGE)).json()["articles"]}
    refused = await a.post(
        "/api/v1/graph/invoke",
        json={"message": QUESTION, "user_id": user, "dataset_id": dataset["id"]},
    )
    assert_error(refused, 404, "dataset_not_found")
    response = await a.post(KNOWLEDGE, json={**OTHER, "dataset_id": dataset["id"]})
    assert_error(response, 404, "dataset_not_found")

    # B's dataset and article are all still there, and cited.
    assert (await b.get(f"{DATASETS}/{dataset['id']}")).json()["documents"] == 1
    assert (await b.get(f"{KNOWLEDGE}/{doc['id']}")).status_code == 200
    assert cited(await ask(b, QUESTION, user))[0] == doc["id"]


async def test_dataset_id_and_include_bundled_choose_what_is_searched(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, b = partners
    first, second = await create_dataset(b, name="one"), await create_dataset(b, name="two")
    secret = await add(b, SECRET, dataset_id=first["id"])
    other = await add(b, OTHER, dataset_id=second["id"])
    user = new_user()

    assert cited(await ask(b, QUESTION, user))[0] == secret["id"]  # default: all of B's
    only_second = await ask(b, QUESTION, user, dataset_id=second["id"])
    assert secret["id"] not in cited(only_second)
    only_first = await ask(b, OTHER_QUESTION, user, dataset_id=[first["id"]])
    assert other["id"] not in cited(only_first)
    both = await ask(b, OTHER_QUESTION, user, dataset_id=[first["id"], second["id"]])
    assert cited(both)[0] == other["id"]

    # Without the bundled base, nothing bundled is cited; with it alone, none of B's.
    drought = "Fermada susuzluq var, nə edim?"
    alone = await ask(b, drought, user, dataset_id=first["id"], include_bundled=False)
    assert not set(cited(alone)) & BUNDLED_IDS
    bundled_only = await ask(b, QUESTION, user, dataset_id=[], include_bundled=True)
    assert set(cited(bundled_only)) <= BUNDLED_IDS


async def test_bundled_is_read_only_and_the_default_dataset_takes_plain_ingests(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = partners
    assert_error(await a.delete(f"{DATASETS}/bundled"), 409, "bundled_read_only")
    response = await a.post(KNOWLEDGE, json={**OTHER, "dataset_id": "bundled"})
    assert_error(response, 409, "bundled_read_only")
    bundled = (await a.get(f"{DATASETS}/bundled")).json()
    assert bundled["read_only"] is True and bundled["documents"] == len(BUNDLED_IDS)

    doc = await add(a, OTHER)  # no dataset: the partner's default one, made on first use
    (default,) = [d for d in (await a.get(DATASETS)).json()["datasets"] if d["is_default"]]
    assert doc["dataset_id"] == default["id"]
    assert default["documents"] == 1
    again = await add(a, OTHER)  # the same content is not stored twice
    assert again["id"] == doc["id"] and again["created"] is False
    listed = (await a.get(f"{DATASETS}/{default['id']}/documents")).json()["documents"]
    assert [d["id"] for d in listed] == [doc["id"]]


async def test_deleting_a_dataset_removes_its_articles_from_answers_at_once(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, b = partners
    dataset = await create_dataset(b)
    doc = await add(b, SECRET, dataset_id=dataset["id"])
    user = new_user()
    assert cited(await ask(b, QUESTION, user))[0] == doc["id"]

    assert (await b.delete(f"{DATASETS}/{dataset['id']}")).status_code == 204
    assert doc["id"] not in cited(await ask(b, QUESTION, user))
    assert_error(await b.get(f"{DATASETS}/{dataset['id']}"), 404, "dataset_not_found")
    assert_error(await b.get(f"{KNOWLEDGE}/{doc['id']}"), 404, "article_not_found")


async def test_external_id_replaces_the_article(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, b = partners
    first = await add(b, OTHER, external_id="circular-7")
    changed = {**OTHER, "content": OTHER["content"].replace("çuval bezi", "aqrotekstil")}
    second = await add(b, changed, external_id="circular-7")
    assert second["id"] != first["id"] and second["created"] is True
    assert_error(await b.get(f"{KNOWLEDGE}/{first['id']}"), 404, "article_not_found")
    body = await ask(b, OTHER_QUESTION, new_user())
    assert cited(body)[0] == second["id"]
    assert "aqrotekstil" in body["response"]


async def test_dataset_input_is_validated(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, _ = partners
    assert (await a.post(DATASETS, json={"name": ""})).status_code == 422
    assert (await a.post(DATASETS, json={"name": "x", "language": "de"})).status_code == 422
    assert (await a.post(DATASETS, json={"name": "x", "owner": "b"})).status_code == 422
    too_many = await a.post(
        "/api/v1/graph/invoke",
        json={"message": QUESTION, "user_id": new_user(), "dataset_id": ["x"] * 21},
    )
    assert_error(too_many, 422, "validation_error")


async def test_the_python_client_manages_datasets_and_documents(
    app: FastAPI, tmp_path: Any
) -> None:
    from alim_client import AsyncAlimClient

    key, _ = await app.state.keys.create(new_user("client-partner"), ["chat", "admin"])
    async with AsyncAlimClient(
        "http://alim.test", key, transport=httpx.ASGITransport(app=app)
    ) as client:
        dataset = await client.datasets.create("Pambıq", "B's own", language="az")
        assert [d["id"] for d in await client.datasets.list()] == ["bundled", dataset["id"]]
        path = tmp_path / "qorvaxin.md"
        path.write_text(f"# {SECRET['title']}\n\n{SECRET['content']}\n", encoding="utf-8")
        doc = await client.documents.upload(path, dataset_id=dataset["id"], external_id="q-1")
        assert (await client.documents.get(doc["id"]))["metadata"]["external_id"] == "q-1"
        assert WORD in (await client.documents.chunk(doc["id"], 0))["content"]
        assert [d["id"] for d in await client.datasets.documents(dataset["id"])] == [doc["id"]]

        result = await client.invoke(QUESTION, new_user(), dataset_id=[dataset["id"]])
        assert result.sources[0]["dataset_id"] == dataset["id"]
        bundled_only = await client.invoke(QUESTION, new_user(), dataset_id=[])
        assert doc["id"] not in [s["id"] for s in bundled_only.sources]

        await client.documents.delete(doc["id"])
        await client.datasets.delete(dataset["id"])
        assert [d["id"] for d in await client.datasets.list()] == ["bundled"]


async def test_the_assistants_datasets_are_searched_when_a_request_names_none(
    partners: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = partners
    secret, other = await create_dataset(b, name="Pambıq"), await create_dataset(b, name="Xurma")
    doc = await add(b, SECRET, dataset_id=secret["id"])
    await add(b, OTHER, dataset_id=other["id"])
    user = new_user("farmer")
    settings = {"dataset_ids": [other["id"]], "include_bundled": False}
    saved = await b.put(ASSISTANT, json=settings)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {**saved.json(), **settings}
    assert (await b.get(ASSISTANT)).json() == saved.json()

    # No dataset named: only the assistant's (not the bundled base, not the other dataset).
    answer = await ask(b, QUESTION, user)
    assert doc["id"] not in cited(answer)
    assert {s["dataset_id"] for s in answer["sources"]} <= {other["id"]}
    # A request's own choice wins over the defaults.
    named = await ask(b, QUESTION, user, dataset_id=secret["id"])
    assert cited(named)[0] == doc["id"]
    bundled = await ask(b, "How do I protect wheat from frost?", user, include_bundled=True)
    assert "bundled" in {s["dataset_id"] for s in bundled["sources"]}

    # A default dataset deleted since is skipped, not an error in every turn.
    assert (await b.delete(f"{DATASETS}/{other['id']}")).status_code == 204
    after = await ask(b, QUESTION, user)
    assert after["sources"] == []

    # Another partner's dataset cannot be a default: 404, its settings unchanged.
    before = (await a.get(ASSISTANT)).json()
    refused = await a.put(ASSISTANT, json={"dataset_ids": [secret["id"]]})
    assert_error(refused, 404, "dataset_not_found")
    assert (await a.get(ASSISTANT)).json() == before
    assert_error(await a.put(ASSISTANT, json={"dataset_ids": ["x" * 65]}), 404, "dataset_not_found")
    too_many = await a.put(ASSISTANT, json={"dataset_ids": [f"ds-{i}" for i in range(21)]})
    assert_error(too_many, 422, "validation_error")
