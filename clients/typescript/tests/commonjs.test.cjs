// The CommonJS build: require() gives the same client, and it works against the real server.
const assert = require("node:assert/strict");
const { test } = require("node:test");

const { AlimClient, NotFoundError, SSEParser } = require("@alim/client");

test("require('@alim/client') invokes a turn and types its errors", async () => {
  const alim = new AlimClient({ baseUrl: process.env.ALIM_URL, apiKey: process.env.ALIM_KEY });
  const turn = await alim.invoke("How do I protect wheat from frost?", {
    user_id: "cjs-user",
    language: "en",
  });
  assert.ok(turn.response.trim());
  await assert.rejects(alim.threads.get("no-such-thread", "cjs-user"), NotFoundError);
  assert.deepEqual(new SSEParser().feed("data: x\n\n"), [{ event: "message", data: "x", id: "" }]);
});
