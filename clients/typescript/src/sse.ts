/**
 * A text/event-stream parser that follows the HTML standard's "event stream interpretation":
 * lines end in CRLF, LF or CR (a CRLF may be split across two chunks); `data:` lines are joined
 * with "\n"; `id:` persists until the next one (ids with U+0000 are ignored); `retry:` takes
 * digits only; lines starting with ":" are comments; an event is dispatched on a blank line and
 * only when it has data; the one space after the colon is removed; a leading BOM is skipped;
 * an unfinished event at the end of the stream is dropped.
 */

/** One event, as dispatched. */
export interface ServerSentEvent {
  /** The `event:` field, or "message" when the event named none. */
  event: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The last `id:` seen in the stream so far ("" when none). */
  id: string;
}

const LINE_END = /\r\n|\r|\n/g;

export class SSEParser {
  /** The stream's reconnection time in milliseconds, once a `retry:` field set it. */
  retry: number | undefined;
  /** The last event id seen (what a reconnect sends as Last-Event-ID). */
  lastEventId = "";

  private partial = "";
  private data: string[] = [];
  private eventType = "";
  private pendingLF = false;
  private started = false;

  /** Parse the next piece of decoded text; returns the events it completed. */
  feed(text: string): ServerSentEvent[] {
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (this.pendingLF && text.startsWith("\n")) text = text.slice(1);
    this.pendingLF = false;
    const events: ServerSentEvent[] = [];
    let start = 0;
    LINE_END.lastIndex = 0;
    for (let m = LINE_END.exec(text); m !== null; m = LINE_END.exec(text)) {
      // A CR at the very end may be the first half of a CRLF: skip an LF that starts the next.
      if (m[0] === "\r" && m.index === text.length - 1) this.pendingLF = true;
      this.line(this.partial + text.slice(start, m.index), events);
      this.partial = "";
      start = m.index + m[0].length;
    }
    this.partial += text.slice(start);
    return events;
  }

  private line(line: string, events: ServerSentEvent[]): void {
    if (line === "") {
      this.dispatch(events);
      return;
    }
    if (line.startsWith(":")) return; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "event":
        this.eventType = value;
        break;
      case "data":
        this.data.push(value);
        break;
      case "id":
        if (!value.includes("\0")) this.lastEventId = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number.parseInt(value, 10);
        break;
      default: // unknown fields are ignored
    }
  }

  private dispatch(events: ServerSentEvent[]): void {
    if (this.data.length > 0) {
      events.push({
        event: this.eventType || "message",
        data: this.data.join("\n"),
        id: this.lastEventId,
      });
    }
    this.data = [];
    this.eventType = "";
  }
}

/**
 * The events of a response body, decoded as UTF-8 (a character split between chunks is kept
 * whole). `onChunk` runs for every chunk received, comments included (to reset an idle timer).
 * Leaving the loop early cancels the body.
 */
export async function* readEvents(
  body: ReadableStream<Uint8Array>,
  parser: SSEParser = new SSEParser(),
  onChunk?: () => void,
): AsyncGenerator<ServerSentEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      onChunk?.();
      yield* parser.feed(decoder.decode(value, { stream: true }));
    }
    finished = true;
    yield* parser.feed(decoder.decode());
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
