// Retries, against a stub server on 127.0.0.1 that refuses on cue (a real server cannot be made
// to answer 429 or 503 at a chosen moment): Retry-After is honoured, the same Idempotency-Key is
// resent, retries stop at maxRetries, and a request that is not safe to resend is not resent.
import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";

import { AlimClient, NetworkError, RateLimitError, UnavailableError } from "@alim/client";

const TURN = {
  response: "Suvarmanı səhər aparın.",
  thread_id: "t-1",
  model: "stub",
  run_id: "r-1",
  route: "agronomy",
  confidence: 0.8,
  escalated: false,
  escalation_reason: null,
  sources: [{ id: "drought.az", title: "Quraqlıq", score: 0.5 }],
  usage: null,
  escalation_id: null,
};
const STREAM =
  'id: r-1:1\nevent: metadata\ndata: {"thread_id": "t-1", "run_id": "r-1"}\n\n' +
  "id: r-1:2\nevent: node\ndata: route\n\n" +
  ": ping\n\n" +
  "id: r-1:3\nevent: token\ndata: Salam\n\n" +
  'id: r-1:4\nevent: sources\ndata: {"sources": [], "confidence": 0.8, "escalated": false, ' +
  '"escalation_reason": null, "route": "agronomy", "model": "stub", "a_newer_field": 1}\n\n' +
  "id: r-1:5\nevent: something_newer\ndata: {}\n\n" +
  "id: r-1:6\nevent: done\ndata: [DONE]\n\n";

/** Refuses the first `refusals` requests with `status` and Retry-After, then answers; the first
 * request whose path ends with `drop` gets no answer at all (its connection is cut); stopped
 * when test `t` ends. */
async function stub(t, { refusals, status = 429, retryAfter = "0", drop = null }) {
  const requests = [];
  const server = http.createServer((req, res) => {
    requests.push({
      method: req.method,
      url: req.url,
      key: req.headers["idempotency-key"],
      at: Date.now(),
    });
    req.resume();
    if (req.url.includes("/claim")) return req.socket.destroy(); // no answer at all
    const path = req.url.split("?")[0];
    if (drop && path.endsWith(drop) && requests.filter((r) => r.url === req.url).length === 1) {
      return req.socket.destroy();
    }
    if (requests.length <= refusals) {
      const code = status === 429 ? "rate_limited" : "checkpointer_unavailable";
      res.writeHead(status, {
        "Content-Type": "application/json",
        "Retry-After": retryAfter,
        "X-Request-ID": `r${requests.length}`,
      });
      return res.end(
        JSON.stringify({ detail: "try again", code, request_id: `r${requests.length}` }),
      );
    }
    if (req.url.endsWith("/graph/stream")) {
      res.writeHead(200, { "Content-Type": "text/event-stream" });
      return res.end(STREAM);
    }
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify(TURN));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, requests };
}

test("429 is retried after Retry-After, with the same Idempotency-Key", async (t) => {
  const { url, requests } = await stub(t, { refusals: 2, retryAfter: "1" });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 2 });
  const started = Date.now();

  const turn = await alim.invoke("Salam", { user_id: "u" });

  assert.equal(turn.response, TURN.response);
  assert.equal(requests.length, 3);
  assert.equal(new Set(requests.map((r) => r.key)).size, 1);
  assert.ok(requests[0].key);
  assert.ok(requests[1].at - requests[0].at >= 950, "waited Retry-After: 1");
  assert.ok(Date.now() - started >= 1900);
});

test("retries stop at maxRetries: RateLimitError with retry_after and request_id", async (t) => {
  const { url, requests } = await stub(t, { refusals: 5, retryAfter: "0" });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 1 });

  const error = await alim.invoke("Salam", { user_id: "u" }).catch((e) => e);

  assert.equal(requests.length, 2);
  assert.ok(error instanceof RateLimitError);
  assert.equal(error.status, 429);
  assert.equal(error.code, "rate_limited");
  assert.equal(error.retry_after, 0);
  assert.equal(error.request_id, "r2");
});

test("a stream refused with 503 is retried, then yields its events (unknown ones skipped)", async (t) => {
  const { url, requests } = await stub(t, { refusals: 1, status: 503 });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 2 });

  const events = [];
  for await (const event of alim.stream("Salam", { user_id: "u" })) events.push(event);

  assert.equal(requests.length, 2);
  assert.equal(requests[0].key, requests[1].key);
  assert.deepEqual(
    events.map((e) => e.type),
    ["metadata", "node", "token", "sources", "done"],
  );
  assert.deepEqual(events[2], { type: "token", text: "Salam", event_id: "r-1:3" });
  assert.equal(events[3].a_newer_field, 1);
});

test("without retries, 503 is UnavailableError", async (t) => {
  const { url, requests } = await stub(t, { refusals: 1, status: 503 });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 0 });
  await assert.rejects(
    alim.invoke("Salam", { user_id: "u" }),
    (e) => e instanceof UnavailableError && e.code === "checkpointer_unavailable",
  );
  assert.equal(requests.length, 1);
});

test("a POST the server does not deduplicate is not resent after a lost answer", async (t) => {
  const { url, requests } = await stub(t, { refusals: 0 });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 3 });
  await assert.rejects(alim.escalations.claim("e-1", "agent-1"), NetworkError);
  assert.equal(requests.length, 1);
});

test("PUT /assistant is resent after a lost answer (it replaces every setting)", async (t) => {
  const { url, requests } = await stub(t, { refusals: 0, drop: "/assistant" });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 3 });
  await alim.assistant.replace({ include_bundled: false });
  assert.deepEqual(requests.map((r) => r.method), ["PUT", "PUT"]);
});

test("an upload is resent after a lost answer, with its Idempotency-Key", async (t) => {
  const { url, requests } = await stub(t, { refusals: 0, drop: "/documents" });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 3 });
  await alim.documents.upload(new Blob(["# Suvarma\n\nSəhər."]), { filename: "suvarma.md" });
  assert.equal(requests.length, 2);
  assert.ok(requests[0].key);
  assert.equal(requests[1].key, requests[0].key);
});

test("an AbortSignal ends the wait for Retry-After", async (t) => {
  const { url, requests } = await stub(t, { refusals: 5, retryAfter: "20" });
  const alim = new AlimClient({ baseUrl: url, apiKey: "k", maxRetries: 3 });
  const started = Date.now();
  await assert.rejects(
    alim.invoke("Salam", { user_id: "u" }, { signal: AbortSignal.timeout(300) }),
    { name: "TimeoutError" },
  );
  assert.ok(Date.now() - started < 5000);
  assert.equal(requests.length, 1);
});
