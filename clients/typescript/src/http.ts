/**
 * The transport: one request with the API key, a deadline and the caller's AbortSignal, and the
 * retry rules of the Python client. 429 and 503 answers are retried after Retry-After (else
 * exponential backoff), at most `maxRetries` times; a request that got no answer is resent only
 * when that is safe: GET, PUT, DELETE (PUT /assistant replaces every setting: twice leaves what
 * once does), and the POSTs whose Idempotency-Key the server honours (every POST carries one,
 * the same on each retry, so a resent turn or upload is never taken twice).
 */

import { NetworkError, errorOf, retryAfterMs } from "./errors.js";

export const API = "/api/v1";
const RETRYABLE = new Set([429, 503]);
const IDEMPOTENT_POSTS =
  /^\/(?:graph\/invoke|graph\/stream|knowledge|documents|escalations\/[^/]+\/reply|threads\/[^/]+\/feedback)$/;

export interface ClientOptions {
  /** The server, e.g. `https://alim.example` ("" for the page's own origin in a browser). */
  baseUrl: string;
  /** Your partner key (sent as X-API-Key). Keep it on your server, not in a public page. */
  apiKey: string;
  /** Retries of 429/503 answers and of safe requests that got no answer (default 3); for a
   * stream, reconnects in a row without a new event. */
  maxRetries?: number;
  /** Milliseconds a request may take; for a stream, until it answers and then between two
   * chunks (the server sends a keep-alive comment every few seconds). Default 120 000. */
  timeoutMs?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Aborting it cancels the request (or ends the stream) with the signal's reason. */
  signal?: AbortSignal;
}

export interface ApiRequest {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  form?: FormData;
  headers?: Record<string, string>;
}

/** A fresh Idempotency-Key. */
export function newKey(): string {
  const bytes = new Uint8Array(16);
  const crypto = globalThis.crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return `alim-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export function backoffMs(attempt: number): number {
  return Math.min(500 * 2 ** attempt, 30_000);
}

/** Wait `ms`; rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Why a Deadline aborted a request (told apart from the caller's abort). */
export class Timeout extends Error {
  override name = "Timeout";
}

/** An AbortSignal that fires when the caller's does or when `ms` pass without `touch()`. */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly onAbort = () => this.controller.abort(this.outer?.reason);

  constructor(
    private readonly ms: number,
    private readonly outer?: AbortSignal,
  ) {
    if (outer?.aborted) this.onAbort();
    else outer?.addEventListener("abort", this.onAbort, { once: true });
    this.touch();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Start the clock again (a chunk arrived). */
  readonly touch = (): void => {
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.controller.abort(new Timeout(`no answer within ${this.ms} ms`)),
      this.ms,
    );
  };

  clear(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener("abort", this.onAbort);
  }
}

/** A fetch failure that may be retried: no answer, a dropped connection or our own timeout. */
export function isDropped(error: unknown): boolean {
  return error instanceof TypeError || error instanceof Timeout;
}

export function dropped(error: unknown): NetworkError {
  const why = error instanceof Error ? error.message : String(error);
  return new NetworkError(0, "network_error", why);
}

export class Http {
  readonly maxRetries: number;
  private readonly base: string;
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly fetcher: typeof fetch;

  constructor(options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, "") + API;
    this.apiKey = options.apiKey;
    this.maxRetries = options.maxRetries ?? 3;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    // Called unbound: a browser's fetch refuses `this` other than the window.
    const fetcher = options.fetch ?? globalThis.fetch;
    this.fetcher = (input, init) => fetcher(input, init);
  }

  /** The request with its Idempotency-Key when it is a POST, and whether it may be resent. */
  prepare(request: ApiRequest): { request: ApiRequest; safe: boolean } {
    if (request.method !== "POST") return { request, safe: true }; // GET, PUT, DELETE
    const headers = { "Idempotency-Key": newKey(), ...request.headers };
    return { request: { ...request, headers }, safe: IDEMPOTENT_POSTS.test(request.path) };
  }

  deadline(signal?: AbortSignal): Deadline {
    return new Deadline(this.timeoutMs, signal);
  }

  /** One attempt, no retry. */
  fetch(request: ApiRequest, signal: AbortSignal, accept = "application/json"): Promise<Response> {
    const headers: Record<string, string> = {
      "X-API-Key": this.apiKey,
      Accept: accept,
      ...request.headers,
    };
    let body: BodyInit | undefined;
    if (request.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(request.json);
    } else if (request.form !== undefined) {
      body = request.form;
    }
    return this.fetcher(this.url(request), { method: request.method, headers, body, signal });
  }

  /** The JSON answer of `request` (undefined for 204), with retries; errors are typed. */
  async call<T>(request: ApiRequest, options: RequestOptions = {}): Promise<T> {
    const { signal } = options;
    const { request: prepared, safe } = this.prepare(request);
    for (let attempt = 0; ; attempt++) {
      const deadline = this.deadline(signal);
      let response: Response;
      let text: string;
      try {
        response = await this.fetch(prepared, deadline.signal);
        if (RETRYABLE.has(response.status) && attempt < this.maxRetries) {
          await response.body?.cancel();
          deadline.clear();
          await sleep(retryAfterMs(response) ?? backoffMs(attempt), signal);
          continue;
        }
        if (response.status >= 400) throw await errorOf(response);
        text = await response.text();
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        if (!isDropped(error)) throw error;
        if (!safe || attempt >= this.maxRetries) throw dropped(error);
        deadline.clear();
        await sleep(backoffMs(attempt), signal);
        continue;
      } finally {
        deadline.clear();
      }
      return (response.status === 204 || text === "" ? undefined : JSON.parse(text)) as T;
    }
  }

  private url(request: ApiRequest): string {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) query.set(name, String(value));
    }
    const search = query.toString();
    return this.base + request.path + (search ? `?${search}` : "");
  }
}
