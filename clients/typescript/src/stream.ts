/**
 * Resumable streams. A turn's stream opens with `POST /graph/stream`; every event carries an id
 * (`<run_id>:<seq>`). When the connection drops (or stays silent past the timeout), the stream
 * reopens with `GET /runs/{run_id}/stream` and `Last-Event-ID`, and the server sends what came
 * after that event: the caller sees one unbroken sequence. At most `maxRetries` reconnects in a
 * row without a new event, with backoff; then `StreamInterrupted`.
 */

import { StreamInterrupted, errorOf, retryAfterMs } from "./errors.js";
import { type StreamEvent, parseEvent } from "./events.js";
import { type ApiRequest, type Http, backoffMs, isDropped, sleep } from "./http.js";
import { SSEParser, type ServerSentEvent, readEvents } from "./sse.js";

const RETRYABLE = new Set([429, 503]);

/** Where a stream stands: the request that opens it, then the run and the last event seen. */
export class Resumable {
  constructor(
    private readonly opening: ApiRequest | undefined,
    private readonly userId: string,
    public runId?: string,
    public lastId?: string,
  ) {}

  /** The next request: the opening POST until the run is known, then the run's stream. */
  request(): ApiRequest {
    const resume: Record<string, string> = this.lastId ? { "Last-Event-ID": this.lastId } : {};
    if (this.runId === undefined) {
      if (this.opening === undefined) throw new Error("a resumed stream needs its run id");
      return { ...this.opening, headers: { ...this.opening.headers, ...resume } };
    }
    return {
      method: "GET",
      path: `/runs/${encodeURIComponent(this.runId)}/stream`,
      query: { user_id: this.userId },
      headers: resume,
    };
  }

  /** Note an event; its typed form (undefined for an unknown event type). */
  see(sse: ServerSentEvent): StreamEvent | undefined {
    if (sse.id) this.lastId = sse.id;
    const event = parseEvent(sse);
    if (event?.type === "metadata" || event?.type === "queued") this.runId = event.run_id;
    return event;
  }
}

export async function* events(
  http: Http,
  state: Resumable,
  signal?: AbortSignal,
): AsyncGenerator<StreamEvent, void, undefined> {
  let attempt = 0;
  for (;;) {
    const deadline = http.deadline(signal);
    try {
      const response = await http.fetch(state.request(), deadline.signal, "text/event-stream");
      if (RETRYABLE.has(response.status) && attempt < http.maxRetries) {
        await response.body?.cancel();
        deadline.clear();
        await sleep(retryAfterMs(response) ?? backoffMs(attempt), signal);
        attempt += 1;
        continue;
      }
      if (response.status >= 400) throw await errorOf(response);
      if (response.body === null) throw new TypeError("the stream's answer has no body");
      deadline.touch();
      // A fresh parser per connection; the id to resume from is kept by `state`.
      for await (const sse of readEvents(response.body, new SSEParser(), deadline.touch)) {
        const event = state.see(sse);
        if (event === undefined) continue;
        attempt = 0; // progress: the retry budget is for drops in a row
        yield event;
        if (event.type === "done") return;
      }
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!isDropped(error)) throw error;
      // dropped: resume below
    } finally {
      deadline.clear();
    }
    if (attempt >= http.maxRetries) {
      throw new StreamInterrupted(0, "stream_interrupted", "the stream's connection dropped");
    }
    await sleep(backoffMs(attempt), signal);
    attempt += 1;
  }
}
