/**
 * Typed errors. An error answer of the API becomes the `ApiError` subclass of its status,
 * carrying the API's stable `code`, its `detail` and the `request_id` to quote to support.
 */

export class ApiError extends Error {
  /** HTTP status (0 when no answer came: see NetworkError, StreamInterrupted). */
  readonly status: number;
  /** Stable machine-readable code, e.g. `thread_busy`, `invalid_api_key`. */
  readonly code: string;
  /** What went wrong, for people. */
  readonly detail: string;
  /** The X-Request-ID of the answer. */
  readonly request_id: string | undefined;

  constructor(status: number, code: string, detail: string, request_id?: string) {
    super(`${status} ${code}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.request_id = request_id;
  }
}

export class AuthenticationError extends ApiError {
  override name = "AuthenticationError";
}
export class PermissionDeniedError extends ApiError {
  override name = "PermissionDeniedError";
}
export class NotFoundError extends ApiError {
  override name = "NotFoundError";
}
export class ConflictError extends ApiError {
  override name = "ConflictError";
}
export class InvalidRequestError extends ApiError {
  override name = "InvalidRequestError";
}
export class RateLimitError extends ApiError {
  override name = "RateLimitError";
  /** Seconds the server asked to wait (Retry-After), when it said. */
  retry_after: number | undefined;
}
export class UnavailableError extends ApiError {
  override name = "UnavailableError";
}
/** No answer at all (connection refused or dropped, timeout) after the allowed retries. */
export class NetworkError extends ApiError {
  override name = "NetworkError";
}
/** The stream's connection dropped and could not be resumed within `maxRetries`. */
export class StreamInterrupted extends ApiError {
  override name = "StreamInterrupted";
}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: InvalidRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: InvalidRequestError,
  415: InvalidRequestError,
  422: InvalidRequestError,
  429: RateLimitError,
  503: UnavailableError,
};

/** The longest wait a Retry-After header may impose, in milliseconds. */
export const MAX_RETRY_AFTER_MS = 30_000;

/** Retry-After (seconds or an HTTP date) in milliseconds, capped; undefined when absent. */
export function retryAfterMs(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  if (Number.isNaN(ms)) return undefined;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The typed error of an error answer (reads its body). */
export async function errorOf(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let code = "http_error";
  let detail = text || response.statusText;
  let bodyRequestId: string | undefined;
  try {
    const body = JSON.parse(text) as { code?: unknown; detail?: unknown; request_id?: unknown };
    if (typeof body.code === "string") code = body.code;
    if (body.detail !== undefined) {
      detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
    }
    if (typeof body.request_id === "string") bodyRequestId = body.request_id;
  } catch {
    // not JSON: keep the text
  }
  const requestId = response.headers.get("x-request-id") ?? bodyRequestId;
  const ErrorClass = BY_STATUS[response.status] ?? ApiError;
  const error = new ErrorClass(response.status, code, detail, requestId);
  if (error instanceof RateLimitError) {
    const ms = retryAfterMs(response);
    error.retry_after = ms === undefined ? undefined : ms / 1000;
  }
  return error;
}
