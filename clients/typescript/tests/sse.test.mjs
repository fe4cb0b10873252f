// The SSE parser on its own: the HTML standard's event stream rules, fed in every way a network
// may cut the bytes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { SSEParser, readEvents } from "@alim/client";

const parse = (...chunks) => {
  const parser = new SSEParser();
  return chunks.flatMap((chunk) => parser.feed(chunk));
};

const STREAM =
  ": ping\n\n" +
  'id: run-1:1\nevent: metadata\ndata: {"thread_id": "t", "run_id": "r"}\n\n' +
  "id: run-1:2\nevent: token\ndata: Birinci sətir\ndata:\ndata: üçüncü\n\n" +
  "retry: 2500\n" +
  "id: run-1:3\nevent: done\ndata: [DONE]\n\n";

const EXPECTED = [
  { event: "metadata", data: '{"thread_id": "t", "run_id": "r"}', id: "run-1:1" },
  { event: "token", data: "Birinci sətir\n\nüçüncü", id: "run-1:2" },
  { event: "done", data: "[DONE]", id: "run-1:3" },
];

test("events, ids and multi-line data; comments are skipped", () => {
  assert.deepEqual(parse(STREAM), EXPECTED);
});

test("a chunk boundary anywhere gives the same events", () => {
  for (let cut = 0; cut <= STREAM.length; cut++) {
    assert.deepEqual(parse(STREAM.slice(0, cut), STREAM.slice(cut)), EXPECTED, `cut at ${cut}`);
  }
  assert.deepEqual(parse(...STREAM), EXPECTED, "one character at a time");
});

test("CRLF, CR and LF line ends, also a CRLF split between chunks", () => {
  const crlf = STREAM.replaceAll("\n", "\r\n");
  const cr = STREAM.replaceAll("\n", "\r");
  assert.deepEqual(parse(crlf), EXPECTED);
  assert.deepEqual(parse(cr), EXPECTED);
  for (let cut = 0; cut <= crlf.length; cut++) {
    assert.deepEqual(parse(crlf.slice(0, cut), crlf.slice(cut)), EXPECTED, `cut at ${cut}`);
  }
  // A lone CR ends a line even when an LF-terminated line follows in the next chunk.
  assert.deepEqual(parse("data: a\r", "\ndata: b\n\n"), [
    { event: "message", data: "a\nb", id: "" },
  ]);
  // …and a CR after a CR is a blank line: it ends the event.
  assert.deepEqual(
    parse("data: a\r", "\rdata: b\n\n").map((e) => e.data),
    ["a", "b"],
  );
});

test("field rules: one leading space removed, no colon, unknown fields, default event", () => {
  assert.deepEqual(parse("data:  two spaces\n\n"), [
    { event: "message", data: " two spaces", id: "" },
  ]);
  assert.deepEqual(parse("data:x:y\n\n"), [{ event: "message", data: "x:y", id: "" }]);
  assert.deepEqual(parse("data\n\n"), [{ event: "message", data: "", id: "" }]);
  assert.deepEqual(parse("foo: bar\ndata: z\n\n"), [{ event: "message", data: "z", id: "" }]);
  assert.deepEqual(parse("event: token\n\ndata: later\n\n"), [
    { event: "message", data: "later", id: "" },
  ]);
});

test("an event without data is not dispatched but its id is kept", () => {
  assert.deepEqual(parse("id: 7\nevent: token\n\ndata: x\n\n"), [
    { event: "message", data: "x", id: "7" },
  ]);
  assert.deepEqual(
    parse("id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n").map((e) => e.id),
    ["1", "1", ""],
  );
  assert.deepEqual(
    parse("id: 1\ndata: a\n\nid: bad\0id\ndata: b\n\n").map((e) => e.id),
    ["1", "1"],
  );
});

test("retry takes digits only; a BOM is skipped; an unfinished event is dropped", () => {
  const parser = new SSEParser();
  parser.feed("retry: 1500\n");
  assert.equal(parser.retry, 1500);
  parser.feed("retry: 15s\nretry: -1\n");
  assert.equal(parser.retry, 1500);
  assert.deepEqual(parse("\uFEFFdata: x\n\n"), [{ event: "message", data: "x", id: "" }]);
  assert.deepEqual(parse("data: x\n\ndata: never finished\n"), [
    { event: "message", data: "x", id: "" },
  ]);
});

test("readEvents decodes UTF-8 split inside a character, across chunks", async () => {
  const bytes = new TextEncoder().encode("event: token\ndata: Salam, ağ ə ş ö ü ç ğ ı\n\n");
  const body = new ReadableStream({
    start(controller) {
      for (const byte of bytes) controller.enqueue(new Uint8Array([byte]));
      controller.close();
    },
  });
  const events = [];
  for await (const event of readEvents(body)) events.push(event);
  assert.deepEqual(events, [{ event: "token", data: "Salam, ağ ə ş ö ü ç ğ ı", id: "" }]);
});

test("leaving readEvents early cancels the body", async () => {
  let cancelled = false;
  const body = new ReadableStream({
    pull(controller) {
      controller.enqueue(new TextEncoder().encode("data: tick\n\n"));
    },
    cancel() {
      cancelled = true;
    },
  });
  for await (const event of readEvents(body)) {
    assert.equal(event.data, "tick");
    break;
  }
  assert.equal(cancelled, true);
});
