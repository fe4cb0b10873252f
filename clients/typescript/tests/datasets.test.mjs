// Datasets and documents (admin keys), and chat requests that choose what is searched, against a
// real `alim serve` with two partners (see support.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";

import { AlimClient } from "@alim/client";

import { ALIM_KEY, ALIM_OTHER_KEY, ALIM_URL, newId } from "./support.mjs";

const alim = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_KEY, timeoutMs: 60_000 });
const other = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_OTHER_KEY, timeoutMs: 60_000 });

// A made-up crop word, so only this document can answer the question.
const WORD = "Qarvelo";
const QUESTION = `${WORD} bitkisini nə vaxt və necə suvarmaq lazımdır?`;
const TEXT =
  `# ${WORD} bitkisinin suvarılması\n\n` +
  `${WORD} bitkisini iyunda həftədə iki dəfə, səhər tezdən suvarın. ` +
  `${WORD} kökləri dayazdır: hər suvarmada 15 litr su bəs edir, torpağı malçlayın.\n`;

const notFound = (code) => ({ name: "NotFoundError", status: 404, code });

test("datasets and documents: upload into a dataset, cited with its dataset and chunk", async () => {
  const dataset = await alim.datasets.create({ name: newId("pilot"), language: "az" });
  assert.match(dataset.id, /^ds-/);
  assert.equal(dataset.read_only, false);
  const listed = await alim.datasets.list();
  assert.equal(listed[0].id, "bundled");
  assert.equal(listed[0].read_only, true);
  assert.ok(listed.some((d) => d.id === dataset.id));
  assert.equal((await alim.datasets.get(dataset.id)).name, dataset.name);

  const file = new Blob([TEXT], { type: "text/markdown" });
  const doc = await alim.documents.upload(file, {
    filename: "qarvelo.md",
    dataset_id: dataset.id,
    external_id: "qarvelo-1",
    tags: ["suvarma", WORD],
  });
  assert.equal(doc.dataset_id, dataset.id);
  assert.equal(doc.title, `${WORD} bitkisinin suvarılması`);
  assert.equal(doc.metadata.file_type, "markdown");
  assert.equal(doc.metadata.external_id, "qarvelo-1");
  assert.ok(doc.metadata.total_chunks >= 1);
  assert.match((await alim.documents.get(doc.id)).content, /15 litr su/);
  const inDataset = await alim.datasets.documents(dataset.id);
  assert.deepEqual(
    inDataset.map((d) => d.id),
    [doc.id],
  );

  const turn = { user_id: newId("user"), dataset_id: [dataset.id], include_bundled: false };
  const answer = await alim.invoke(QUESTION, turn);
  const cited = answer.sources.find((s) => s.document_id === doc.id);
  assert.ok(cited, JSON.stringify(answer.sources));
  assert.equal(cited.dataset_id, dataset.id);
  assert.equal(cited.title, doc.title);
  assert.equal(typeof cited.chunk_index, "number");
  assert.equal(cited.page_number, null); // Markdown has no pages
  // Only the named dataset was searched: nothing from the bundled base.
  assert.ok(answer.sources.every((s) => s.dataset_id === dataset.id));
  const chunk = await alim.documents.chunk(doc.id, cited.chunk_index);
  assert.equal(chunk.metadata.dataset_id, dataset.id);
  assert.match(chunk.content, new RegExp(WORD));
  await assert.rejects(alim.documents.chunk(doc.id, 9999), notFound("chunk_not_found"));

  await alim.documents.delete(doc.id);
  await assert.rejects(alim.documents.get(doc.id), notFound("document_not_found"));
  await alim.datasets.delete(dataset.id);
  await assert.rejects(alim.datasets.get(dataset.id), notFound("dataset_not_found"));
});

test("another partner can neither see, search nor be answered from a partner's dataset", async () => {
  const dataset = await alim.datasets.create({ name: newId("private") });
  const file = new Blob([TEXT], { type: "text/markdown" });
  const doc = await alim.documents.upload(file, { filename: "q.md", dataset_id: dataset.id });
  const user = newId("user"); // the same end-user id in both partners' apps

  assert.ok(!(await other.datasets.list()).some((d) => d.id === dataset.id));
  await assert.rejects(other.datasets.get(dataset.id), notFound("dataset_not_found"));
  await assert.rejects(other.datasets.delete(dataset.id), notFound("dataset_not_found"));
  await assert.rejects(other.documents.get(doc.id), notFound("document_not_found"));
  await assert.rejects(other.documents.delete(doc.id), notFound("document_not_found"));
  await assert.rejects(
    other.invoke(QUESTION, { user_id: user, dataset_id: dataset.id }),
    notFound("dataset_not_found"),
  );
  const theirs = await other.invoke(QUESTION, { user_id: user });
  assert.ok(theirs.sources.every((s) => s.document_id !== doc.id && s.dataset_id !== dataset.id));
  const ours = await alim.invoke(QUESTION, { user_id: user });
  assert.ok(ours.sources.some((s) => s.document_id === doc.id));

  await alim.datasets.delete(dataset.id);
});
