// The assistant's settings (admin keys): its default datasets choose what a chat that names none
// searches, against a real `alim serve` (see support.mjs). The settings changed here are the
// second partner's: the other files run at the same time and use that partner only to check
// what it cannot see, which no setting of its own changes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { AlimClient } from "@alim/client";

import { ALIM_KEY, ALIM_OTHER_KEY, ALIM_URL, DROUGHT_AZ, newId } from "./support.mjs";

const alim = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_KEY, timeoutMs: 60_000 });
const partner = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_OTHER_KEY, timeoutMs: 60_000 });

// A made-up plant, so only this document can answer the question.
const WORD = "Zirvanka";
const QUESTION = `${WORD} fidanlarını nə vaxt budamaq lazımdır?`;
const TEXT =
  `# ${WORD} fidanlarının budanması\n\n` +
  `${WORD} fidanlarını fevralda, tumurcuqlar oyanmamış budayın. ` +
  `${WORD} qollarında üç-dörd göz saxlayın, quru ${WORD} zoğlarını kəsin.\n`;

const datasetsOf = (answer) => new Set(answer.sources.map((s) => s.dataset_id));

test("assistant settings: a chat that names no dataset searches the assistant's", async () => {
  const dataset = await partner.datasets.create({ name: newId("defaults"), language: "az" });
  const file = new Blob([TEXT], { type: "text/markdown" });
  const doc = await partner.documents.upload(file, {
    filename: "zirvanka.md",
    dataset_id: dataset.id,
  });
  const user = newId("user");
  try {
    const saved = await partner.assistant.replace({
      dataset_ids: [dataset.id],
      include_bundled: false,
    });
    assert.deepEqual(saved.dataset_ids, [dataset.id]);
    assert.equal(saved.include_bundled, false);
    assert.equal(saved.display_name, "ALİM"); // left out: the default
    assert.ok(saved.updated_at);
    assert.deepEqual(await partner.assistant.get(), saved);

    const answer = await partner.invoke(QUESTION, { user_id: user });
    assert.equal(answer.sources[0].document_id, doc.id);
    const drought = await partner.invoke(DROUGHT_AZ, { user_id: user });
    assert.ok([...datasetsOf(drought)].every((id) => id === dataset.id), drought.sources);
    // A request's own choice wins over the defaults.
    const asked = await partner.invoke(DROUGHT_AZ, { user_id: user, include_bundled: true });
    assert.ok(datasetsOf(asked).has("bundled"));

    // Another partner's dataset cannot be a default; that partner's settings stay as they were.
    await assert.rejects(alim.assistant.replace({ dataset_ids: [dataset.id] }), {
      name: "NotFoundError",
      status: 404,
      code: "dataset_not_found",
    });
    assert.equal((await alim.assistant.get()).dataset_ids, null);
    await assert.rejects(partner.assistant.replace({ default_language: "de" }), {
      name: "InvalidRequestError",
      status: 422,
      code: "validation_error",
    });
  } finally {
    await partner.assistant.replace({});
  }
  const reset = await partner.assistant.get();
  assert.equal(reset.dataset_ids, null);
  assert.equal(reset.include_bundled, true);
  assert.ok(datasetsOf(await partner.invoke(DROUGHT_AZ, { user_id: user })).has("bundled"));
  await partner.datasets.delete(dataset.id);
});
