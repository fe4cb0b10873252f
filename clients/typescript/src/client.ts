/**
 * `AlimClient`: one turn (`invoke`), one turn as typed events (`stream`, resumable), and the
 * partner resources: threads, runs, escalations (agent keys), knowledge, datasets, documents and
 * the assistant's settings (admin keys).
 */

import type { StreamEvent, TurnResult } from "./events.js";
import { type ClientOptions, Http, type RequestOptions } from "./http.js";
import {
  AssistantResource,
  Datasets,
  Documents,
  Escalations,
  Knowledge,
  Runs,
  Threads,
} from "./resources.js";
import { Resumable, events } from "./stream.js";
import type { TurnOptions } from "./types.js";

export interface ResumeOptions extends RequestOptions {
  /** Go on after this event (its `event_id`); from the run's first event when omitted. */
  last_event_id?: string;
}

export class AlimClient {
  readonly threads: Threads;
  readonly runs: Runs;
  readonly escalations: Escalations;
  readonly knowledge: Knowledge;
  readonly datasets: Datasets;
  readonly documents: Documents;
  readonly assistant: AssistantResource;
  private readonly http: Http;

  constructor(options: ClientOptions) {
    this.http = new Http(options);
    this.threads = new Threads(this.http);
    this.runs = new Runs(this.http);
    this.escalations = new Escalations(this.http);
    this.knowledge = new Knowledge(this.http);
    this.datasets = new Datasets(this.http);
    this.documents = new Documents(this.http);
    this.assistant = new AssistantResource(this.http);
  }

  /** One turn; resolves with the whole answer. */
  invoke(message: string, turn: TurnOptions, options?: RequestOptions): Promise<TurnResult> {
    return this.http.call<TurnResult>(
      { method: "POST", path: "/graph/invoke", json: { ...turn, message } },
      options,
    );
  }

  /**
   * One turn as typed events: `metadata` (or `queued`), `node`…, `token`…, `sources`, then
   * `done` (an `error` comes before `done` when the run fails). A dropped connection is resumed.
   */
  stream(
    message: string,
    turn: TurnOptions,
    options: RequestOptions = {},
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const { request } = this.http.prepare({
      method: "POST",
      path: "/graph/stream",
      json: { ...turn, message },
    });
    return events(this.http, new Resumable(request, turn.user_id), options.signal);
  }

  /** A run's events again (e.g. after a page reload): after `last_event_id`, then live. */
  resume(
    run_id: string,
    user_id: string,
    options: ResumeOptions = {},
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const state = new Resumable(undefined, user_id, run_id, options.last_event_id);
    return events(this.http, state, options.signal);
  }
}
