// AlimClient as a partner app uses it, against a real `alim serve` (see support.mjs).
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AlimClient,
  ApiError,
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  NotFoundError,
} from "@alim/client";

import {
  ALIM_KEY,
  ALIM_URL,
  DROUGHT_AZ,
  FROST_EN,
  HUMAN,
  collect,
  newId,
  recordingFetch,
  seqs,
} from "./support.mjs";

const alim = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_KEY, timeoutMs: 60_000 });

function checkTurn(result) {
  assert.ok(result.response.trim());
  assert.match(result.thread_id, /^[0-9a-f-]{36}$/);
  assert.ok(result.run_id);
  assert.equal(result.route, "agronomy");
  assert.equal(result.escalated, false);
  assert.ok(result.sources.length > 0);
  for (const source of result.sources) assert.ok(typeof source.id === "string" && source.title);
}

/** metadata, node…, token…, sources, done, and nothing else; ids numbered 1, 2, 3, … */
function checkEventOrder(events) {
  const types = events.map((e) => e.type);
  assert.equal(types[0], "metadata");
  assert.deepEqual(types.slice(-2), ["sources", "done"]);
  const middle = types.slice(1, -2);
  const firstToken = middle.indexOf("token");
  assert.ok(firstToken >= 1, types.join(" "));
  assert.ok(middle.slice(0, firstToken).every((t) => t === "node"));
  assert.ok(middle.slice(firstToken).every((t) => t === "token"));
  const nodes = events.filter((e) => e.type === "node").map((e) => e.name);
  assert.equal(nodes[0], "route");
  assert.ok(nodes.includes("generate"));
  assert.deepEqual(
    seqs(events),
    events.map((_, i) => i + 1),
  );
}

const answerOf = (events) =>
  events
    .filter((e) => e.type === "token")
    .map((e) => e.text)
    .join("");

test("invoke returns the turn; a second invoke continues its thread", async () => {
  const user = newId("user");
  const first = await alim.invoke(DROUGHT_AZ, { user_id: user });
  checkTurn(first);
  const second = await alim.invoke(FROST_EN, {
    user_id: user,
    thread_id: first.thread_id,
    language: "en",
  });
  checkTurn(second);
  assert.equal(second.thread_id, first.thread_id);
  assert.notEqual(second.run_id, first.run_id);
  const history = await alim.threads.history(first.thread_id, user);
  assert.deepEqual(
    history.map((m) => m.content),
    [DROUGHT_AZ, first.response, FROST_EN, second.response],
  );
});

test("stream yields typed events whose tokens are the stored answer", async () => {
  const user = newId("user");
  const events = await collect(alim.stream(DROUGHT_AZ, { user_id: user }));
  checkEventOrder(events);
  const [meta, summary] = [events[0], events.at(-2)];
  assert.match(meta.event_id, new RegExp(`^${meta.run_id}:1$`));
  assert.equal(summary.route, "agronomy");
  assert.ok(summary.sources.length > 0);
  const detail = await alim.threads.get(meta.thread_id, user);
  assert.deepEqual(
    detail.messages.map((m) => m.role),
    ["user", "assistant"],
  );
  assert.equal(detail.messages[1].content, answerOf(events));
  assert.deepEqual(
    detail.messages[1].sources.map((s) => s.id),
    summary.sources.map((s) => s.id),
  );
});

test("resume replays a run's events after a given event id", async () => {
  const user = newId("user");
  const events = await collect(alim.stream(FROST_EN, { user_id: user }));
  const run = events[0].run_id;
  const again = await collect(alim.resume(run, user, { last_event_id: events[2].event_id }));
  assert.deepEqual(again, events.slice(3));
  assert.deepEqual(await collect(alim.resume(run, user)), events);
  const status = await alim.runs.get(run, user);
  assert.equal(status.status, "success");
  assert.equal(status.result.response, answerOf(events));
  await assert.rejects(collect(alim.resume(run, newId("stranger"))), {
    name: "NotFoundError",
    code: "run_not_found",
  });
});

test("threads: list, get, delete; another user sees none of them", async () => {
  const user = newId("user");
  const kept = await alim.invoke(DROUGHT_AZ, { user_id: user });
  const dropped = await alim.invoke(FROST_EN, { user_id: user });
  const listed = await alim.threads.list(user);
  assert.deepEqual(
    new Set(listed.map((t) => t.thread_id)),
    new Set([kept.thread_id, dropped.thread_id]),
  );
  assert.equal((await alim.threads.list(user, { limit: 1 })).length, 1);

  assert.equal(await alim.threads.delete(dropped.thread_id, user), undefined);

  assert.deepEqual(
    (await alim.threads.list(user)).map((t) => t.thread_id),
    [kept.thread_id],
  );
  const gone = await alim.threads.get(dropped.thread_id, user).catch((e) => e);
  assert.ok(gone instanceof NotFoundError && gone instanceof ApiError);
  assert.equal(gone.status, 404);
  assert.equal(gone.code, "thread_not_found");
  assert.ok(gone.request_id);
  await assert.rejects(alim.threads.get(kept.thread_id, newId("stranger")), NotFoundError);
  assert.deepEqual(await alim.threads.list(newId("stranger")), []);
});

test("feedback rates a run of the thread", async () => {
  const user = newId("user");
  const turn = await alim.invoke(DROUGHT_AZ, { user_id: user });
  const rated = await alim.threads.feedback(turn.thread_id, {
    user_id: user,
    run_id: turn.run_id,
    score: 5,
    comment: "Çox faydalı",
  });
  assert.equal(rated.run_id, turn.run_id);
  assert.equal(rated.score, 5);
  await assert.rejects(
    alim.threads.feedback(turn.thread_id, { user_id: user, run_id: turn.run_id, score: 9 }),
    { name: "InvalidRequestError", status: 422 },
  );
});

test("errors are typed and carry status, code, detail and request_id", async () => {
  const stranger = new AlimClient({ baseUrl: ALIM_URL, apiKey: "not-a-key" });
  const badKey = await stranger.invoke(DROUGHT_AZ, { user_id: "u" }).catch((e) => e);
  assert.ok(badKey instanceof AuthenticationError);
  assert.equal(badKey.status, 401);
  assert.equal(badKey.code, "invalid_api_key");
  assert.ok(badKey.detail);
  assert.ok(badKey.request_id);
  await assert.rejects(collect(stranger.stream(DROUGHT_AZ, { user_id: "u" })), AuthenticationError);

  const empty = await alim.invoke("", { user_id: newId("user") }).catch((e) => e);
  assert.ok(empty instanceof InvalidRequestError);
  assert.equal(empty.status, 422);
  assert.equal(empty.code, "message_empty");
  assert.notEqual(empty.request_id, badKey.request_id);
  await assert.rejects(collect(alim.stream("  ", { user_id: newId("user") })), {
    code: "message_empty",
  });
});

test("every POST carries an Idempotency-Key, a fresh one per call", async () => {
  const requests = [];
  const client = new AlimClient({
    baseUrl: ALIM_URL,
    apiKey: ALIM_KEY,
    fetch: recordingFetch(requests),
  });
  const user = newId("user");
  const turn = await client.invoke(DROUGHT_AZ, { user_id: user });
  await collect(client.stream(FROST_EN, { user_id: user, thread_id: turn.thread_id }));
  await client.threads.feedback(turn.thread_id, { user_id: user, run_id: turn.run_id, score: 4 });
  await client.threads.list(user);

  const posts = requests.filter((r) => r.method === "POST");
  assert.equal(posts.length, 3);
  const keys = posts.map((r) => r.headers.get("idempotency-key"));
  assert.ok(
    keys.every((k) => /^alim-[0-9a-f]{32}$/.test(k)),
    keys.join(),
  );
  assert.equal(new Set(keys).size, 3);
  assert.equal(requests.at(-1).headers.get("idempotency-key"), null);
});

test("an answer lost on the way is asked for again with the same key: one turn, not two", async () => {
  const requests = [];
  let lost = 0;
  const losing = async (input, init) => {
    const response = await fetch(input, init);
    if (init.method === "POST" && lost === 0) {
      lost += 1;
      await response.text(); // the server answered; the phone never got it
      throw new TypeError("fetch failed");
    }
    return response;
  };
  const client = new AlimClient({
    baseUrl: ALIM_URL,
    apiKey: ALIM_KEY,
    fetch: recordingFetch(requests, losing),
  });
  const user = newId("user");

  const turn = await client.invoke(DROUGHT_AZ, { user_id: user });

  assert.equal(requests.length, 2);
  assert.equal(
    requests[0].headers.get("idempotency-key"),
    requests[1].headers.get("idempotency-key"),
  );
  const history = await alim.threads.history(turn.thread_id, user);
  assert.deepEqual(
    history.map((m) => m.content),
    [DROUGHT_AZ, turn.response],
  );
  assert.equal((await alim.threads.list(user)).length, 1);
});

test("escalations: the agent sees the hand-off, claims it and replies", async () => {
  const user = newId("user");
  const asked = await alim.invoke(HUMAN, { user_id: user });
  assert.equal(asked.escalated, true);
  assert.equal(asked.escalation_reason, "user_requested");
  const open = await alim.escalations.list();
  const escalation = open.find((e) => e.id === asked.escalation_id);
  assert.equal(escalation.thread_id, asked.thread_id);
  assert.equal(escalation.question, HUMAN);

  const claimed = await alim.escalations.claim(asked.escalation_id, "agronomist-7");
  assert.equal(claimed.claimed_by, "agronomist-7");
  await assert.rejects(
    alim.escalations.reply(asked.escalation_id, "Mən cavab verim.", "agronomist-8"),
    {
      name: "ConflictError",
      code: "escalation_claimed",
    },
  );
  const answer = "Damcı suvarmanı axşam aparın və torpağı malçlayın.";
  const replied = await alim.escalations.reply(asked.escalation_id, answer, "agronomist-7");

  assert.equal(replied.status, "resolved");
  assert.equal(replied.answer, answer);
  assert.ok(!(await alim.escalations.list()).some((e) => e.id === asked.escalation_id));
  assert.ok((await alim.escalations.list("resolved")).some((e) => e.id === asked.escalation_id));
  assert.equal((await alim.threads.history(asked.thread_id, user)).at(-1).content, answer);
  const twice = await alim.escalations
    .reply(asked.escalation_id, answer, "agronomist-7")
    .catch((e) => e);
  assert.ok(twice instanceof ConflictError);
  assert.equal(twice.code, "escalation_resolved");
});

test("knowledge: add, find in answers, upload a file, delete", async () => {
  const title = "Zəfəran soğanlarının əkilməsi";
  const content =
    "Zəfəran soğanlarını avqustun sonunda, 10 sm dərinlikdə, yüngül və quru torpağa əkin. " +
    "Zəfəran soğanları arasında 10 sm məsafə saxlayın. Zəfəran payızda çiçəkləyir; " +
    "çiçəkləri səhər tezdən yığın və dişcikləri kölgədə qurudun.";
  const added = await alim.knowledge.add({ title, content, language: "az", tags: ["zəfəran"] });
  assert.equal(added.source, "ingested");
  assert.equal((await alim.knowledge.get(added.id)).content, content);
  const page = await alim.knowledge.list({ limit: 200 });
  assert.ok(page.articles.some((a) => a.id === added.id));
  const answer = await alim.invoke("Zəfəran soğanlarını nə vaxt və hansı dərinlikdə əkməliyəm?", {
    user_id: newId("user"),
  });
  assert.equal(answer.sources[0].id, added.id);

  const file = new Blob(
    [
      "# Kivi tinglərinin budanması\n\nKivi tinglərini qışda, tumurcuqlar oyanmamış budayın. ",
      "Kivi tənəyində hər qolda dörd-beş göz saxlayın.\n",
    ],
    { type: "text/markdown" },
  );
  const uploaded = await alim.knowledge.upload(file, { filename: "kivi.md" });
  assert.equal(uploaded.title, "Kivi tinglərinin budanması");
  assert.equal(uploaded.language, "az");
  await assert.rejects(alim.knowledge.upload(new Blob(["x"]), { filename: "notes.xlsx" }), {
    name: "InvalidRequestError",
    status: 415,
    code: "unsupported_document",
  });

  await alim.knowledge.delete(added.id);
  await alim.knowledge.delete(uploaded.id);
  await assert.rejects(alim.knowledge.get(added.id), {
    name: "NotFoundError",
    code: "article_not_found",
  });
  await assert.rejects(alim.knowledge.delete("frost.en"), {
    name: "ConflictError",
    code: "bundled_article",
  });
});

test("an AbortSignal cancels a call and ends a stream", async () => {
  const user = newId("user");
  const before = AbortSignal.abort();
  await assert.rejects(alim.invoke(DROUGHT_AZ, { user_id: user }, { signal: before }), {
    name: "AbortError",
  });

  const controller = new AbortController();
  const seen = [];
  const reading = (async () => {
    for await (const event of alim.stream(
      DROUGHT_AZ,
      { user_id: user },
      { signal: controller.signal },
    )) {
      seen.push(event.type);
      if (event.type === "token") controller.abort();
    }
  })();
  await assert.rejects(reading, { name: "AbortError" });
  assert.equal(seen.at(-1), "token");
  assert.ok(!seen.includes("done"));
});
