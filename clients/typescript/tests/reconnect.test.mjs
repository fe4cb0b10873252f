// A stream whose connection drops mid-answer, through a TCP proxy on 127.0.0.1 that cuts the
// first connection after some bytes of the answer (a phone losing its network): the client
// reconnects with Last-Event-ID and the caller sees one unbroken sequence.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";

import { AlimClient, StreamInterrupted } from "@alim/client";

import {
  ALIM_KEY,
  ALIM_URL,
  DROUGHT_AZ,
  collect,
  newId,
  recordingFetch,
  seqs,
} from "./support.mjs";

/** Forwards to the server; connection n is cut after cuts[n] bytes of the answer. Closed
 * (every connection too) when test `t` ends. */
function cuttingProxy(t, cuts) {
  const target = new URL(ALIM_URL);
  let connections = 0;
  const sockets = new Set();
  const server = net.createServer((client) => {
    const limit = cuts[connections++];
    const upstream = net.connect(Number(target.port), target.hostname);
    let passed = 0;
    client.pipe(upstream);
    upstream.on("data", (chunk) => {
      passed += chunk.length;
      if (limit !== undefined && limit !== null && passed > limit) {
        client.write(chunk.subarray(0, chunk.length - (passed - limit)));
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    upstream.on("end", () => client.end());
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => socket.destroy());
    }
  });
  const close = () => {
    for (const socket of sockets) socket.destroy();
    server.close();
  };
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      t.after(close);
      resolve({ url: `http://127.0.0.1:${server.address().port}` });
    });
  });
}

test("a dropped stream resumes where it stopped: every event once, in order", async (t) => {
  const proxy = await cuttingProxy(t, [1500]);
  const requests = [];
  const client = new AlimClient({
    baseUrl: proxy.url,
    apiKey: ALIM_KEY,
    fetch: recordingFetch(requests),
  });
  const user = newId("user");

  const events = await collect(client.stream(DROUGHT_AZ, { user_id: user }));

  assert.equal(events[0].type, "metadata");
  assert.deepEqual(
    events.slice(-2).map((e) => e.type),
    ["sources", "done"],
  );
  assert.deepEqual(
    seqs(events),
    events.map((_, i) => i + 1),
  );
  assert.ok(requests.length >= 2, "the first connection was cut");
  const [opening, resumed] = requests;
  assert.equal(opening.method, "POST");
  assert.equal(resumed.method, "GET");
  assert.equal(new URL(resumed.url).pathname, `/api/v1/runs/${events[0].run_id}/stream`);
  const lastSeen = Number(resumed.headers.get("last-event-id").split(":").pop());
  assert.ok(lastSeen >= 1 && lastSeen < events.length, `resumed after ${lastSeen}`);

  const direct = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_KEY });
  const history = await direct.threads.history(events[0].thread_id, user);
  const answer = events
    .filter((e) => e.type === "token")
    .map((e) => e.text)
    .join("");
  assert.deepEqual(
    history.map((m) => m.content),
    [DROUGHT_AZ, answer],
  );
});

test("a connection cut before the first event resends the POST with the same key", async (t) => {
  const proxy = await cuttingProxy(t, [10]);
  const requests = [];
  const client = new AlimClient({
    baseUrl: proxy.url,
    apiKey: ALIM_KEY,
    fetch: recordingFetch(requests),
  });
  const user = newId("user");

  const events = await collect(client.stream(DROUGHT_AZ, { user_id: user }));

  assert.deepEqual(
    requests.map((r) => r.method),
    ["POST", "POST"],
  );
  assert.equal(
    requests[0].headers.get("idempotency-key"),
    requests[1].headers.get("idempotency-key"),
  );
  assert.equal(events.at(-1).type, "done");
  const direct = new AlimClient({ baseUrl: ALIM_URL, apiKey: ALIM_KEY });
  assert.equal((await direct.threads.history(events[0].thread_id, user)).length, 2);
});

test("when every reconnect is cut too, the stream ends with StreamInterrupted", async (t) => {
  const proxy = await cuttingProxy(t, [1500, 0, 0, 0, 0]);
  const client = new AlimClient({ baseUrl: proxy.url, apiKey: ALIM_KEY, maxRetries: 2 });
  const seen = [];
  const reading = (async () => {
    for await (const event of client.stream(DROUGHT_AZ, { user_id: newId("user") }))
      seen.push(event);
  })();
  await assert.rejects(reading, StreamInterrupted);
  assert.equal(seen[0].type, "metadata");
  assert.ok(!seen.some((e) => e.type === "done"));
});
