/**
 * The typed events of one streamed turn and the whole-turn result. Field names are the API's
 * (snake_case), as in the HTTP guide and the Python client.
 */

import type { ServerSentEvent } from "./sse.js";

/** A knowledge article an answer rests on. */
export interface Source {
  id: string;
  title: string;
  /** Cosine similarity of the best chunk. */
  score: number;
  /** The cited article or document (the same as `id`). */
  document_id?: string | null;
  /** Its dataset: `bundled` (the shared base) or one of yours. */
  dataset_id?: string | null;
  /** The chunk the cited passage leads with (`documents.chunk(document_id, chunk_index)`). */
  chunk_index?: number | null;
  /** That chunk's page, for PDFs (from 1). */
  page_number?: number | null;
  [field: string]: unknown;
}

interface Stamped {
  /** The SSE id (`<run_id>:<seq>`): give it to `resume()` to go on after this event. */
  event_id?: string;
}

/** First event: where the turn lives (a new thread's id reaches the client here). */
export interface MetadataEvent extends Stamped {
  type: "metadata";
  thread_id: string;
  run_id: string;
}

/** First event of a run sent with `multitask_strategy: "enqueue"` while its thread is busy. */
export interface QueuedEvent extends Stamped {
  type: "queued";
  thread_id: string;
  run_id: string;
}

/** A graph node started (`route`, `retrieve`, `generate`, `escalate`, …). */
export interface NodeEvent extends Stamped {
  type: "node";
  name: string;
}

/** A chunk of the user-visible answer. */
export interface TokenEvent extends Stamped {
  type: "token";
  text: string;
}

/** After the answer: what it rests on and how the turn went. */
export interface SourcesEvent extends Stamped {
  type: "sources";
  sources: Source[];
  confidence: number | null;
  escalated: boolean;
  escalation_reason: string | null;
  route: string | null;
  model: string | null;
  usage?: Record<string, number> | null;
  /** Set when the turn waits for an agronomist. */
  escalation_id?: string | null;
}

/** The run failed (`run_lost`, `cancelled`, `provider_unavailable`, …); `done` follows. */
export interface ErrorEvent extends Stamped {
  type: "error";
  code: string;
  detail: string;
}

/** Always the last event, also after an error. */
export interface DoneEvent extends Stamped {
  type: "done";
}

export type StreamEvent =
  MetadataEvent | QueuedEvent | NodeEvent | TokenEvent | SourcesEvent | ErrorEvent | DoneEvent;

/** The whole turn, as `invoke()` returns it. */
export interface TurnResult {
  response: string;
  thread_id: string;
  model: string;
  run_id: string;
  route: string | null;
  confidence: number | null;
  escalated: boolean;
  escalation_reason: string | null;
  sources: Source[];
  usage: Record<string, number> | null;
  escalation_id: string | null;
}

/**
 * One SSE event of a turn's stream as a typed event; undefined for an event type this client
 * does not know (a newer server's), which the stream skips.
 */
export function parseEvent(sse: ServerSentEvent): StreamEvent | undefined {
  const stamp: Stamped = sse.id ? { event_id: sse.id } : {};
  switch (sse.event) {
    case "token":
      return { type: "token", text: sse.data, ...stamp };
    case "node":
      return { type: "node", name: sse.data, ...stamp };
    case "done":
      return { type: "done", ...stamp };
    case "metadata":
    case "queued":
    case "sources":
    case "error":
      return { ...JSON.parse(sse.data), type: sse.event, ...stamp } as StreamEvent;
    default:
      return undefined;
  }
}
