/**
 * ALİM API client for browsers and Node ≥ 18 (fetch streaming, no dependencies).
 *
 *   const alim = new AlimClient({ baseUrl: "http://127.0.0.1:8000", apiKey });
 *   for await (const event of alim.stream("Sabah Qubada yağış olacaq?", { user_id: "farmer-1" })) {
 *     if (event.type === "token") process.stdout.write(event.text);
 *   }
 */

export { AlimClient, type ResumeOptions } from "./client.js";
export {
  ApiError,
  AuthenticationError,
  ConflictError,
  InvalidRequestError,
  NetworkError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
  StreamInterrupted,
  UnavailableError,
} from "./errors.js";
export * from "./events.js";
export type { ClientOptions, RequestOptions } from "./http.js";
export type { DocumentUpload, Page, Upload } from "./resources.js";
export { type ServerSentEvent, SSEParser, readEvents } from "./sse.js";
export type * from "./types.js";
