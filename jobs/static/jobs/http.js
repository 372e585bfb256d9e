/**
 * HTTP for the jobs client: one request with its retries, the headers (token or
 * CSRF), JSON bodies, error answers, and the URLs derived from a job's.
 *
 * @module jobs/http
 */

import { ApiError, errorFromBody } from "./errors.js";
import { backoffDelay, parseRetryAfter, raceAbort, sleep } from "./timing.js";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Fetch once, retrying what is worth retrying; return the first other response.
 *
 * 429 is always retried (the server did not process the request); network
 * errors and 5xx only when `retryAll` (safe or idempotent requests). Waits as
 * `Retry-After` says, else by backoff, `retries` times at most.
 */
export async function request(rt, url, init, { signal, retryAll }) {
  for (let failures = 0; ; failures += 1) {
    let response;
    try {
      response = await raceAbort(rt.fetch(url, { credentials: "same-origin", ...init, signal }), signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (!retryAll || failures >= rt.retries) {
        throw new ApiError(`No answer from ${url}: ${error && error.message}`, {
          status: 0,
          code: "network_error",
          detail: String(error && error.message),
          cause: error,
        });
      }
      await sleep(rt, backoffDelay(failures, rt), signal);
      continue;
    }
    const retryable = response.status === 429 || (retryAll && response.status >= 500);
    if (!retryable || failures >= rt.retries) return response;
    const asked = parseRetryAfter(response.headers.get("Retry-After"), rt.now());
    await sleep(rt, asked ?? backoffDelay(failures, rt), signal);
  }
}

/** The headers of a request: JSON, the extra `headers`, and the token or (unsafe methods) the CSRF token. */
export function requestHeaders(method, options, { json }) {
  const headers = { Accept: "application/json", ...options.headers };
  if (json) headers["Content-Type"] = "application/json";
  if (options.token) {
    headers.Authorization = `Bearer ${options.token}`;
  } else if (!SAFE_METHODS.has(method)) {
    const csrf = options.csrfToken ?? readCookie(options.csrfCookieName ?? "csrftoken");
    if (csrf) headers["X-CSRFToken"] = csrf;
  }
  return headers;
}

/** The response body as JSON; null when it is empty. */
export async function readJson(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** The {@link ApiError} for an error response, from its JSON body if it has one. */
export async function apiError(response) {
  let body = null;
  try {
    body = await readJson(response);
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  return errorFromBody(response.status, body);
}

/** `jobs/j1/` + "cancel" -> `jobs/j1/cancel/` (with or without the trailing slash). */
export function subresource(jobUrl, name) {
  const [path, query] = splitAt(jobUrl, "?");
  return `${path.endsWith("/") ? path : `${path}/`}${name}/${query}`;
}

/** `url` with `name=value` added to its query string. */
export function withQuery(url, name, value) {
  const [path, fragment] = splitAt(url, "#");
  return `${path}${path.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(value)}${fragment}`;
}

/** `location` resolved against the URL it answered (itself relative to the page). */
export function resolveUrl(location, base) {
  try {
    return new URL(location, new URL(base, globalThis.location && globalThis.location.href)).href;
  } catch {
    // A relative base outside a browser: the server's path is as good as it gets.
    return location;
  }
}

/** Split before the first `separator`: ["a", "?b?c"] for "a?b?c", ["a", ""] without one. */
function splitAt(text, separator) {
  const index = text.indexOf(separator);
  return index === -1 ? [text, ""] : [text.slice(0, index), text.slice(index)];
}

function readCookie(name) {
  const cookies = globalThis.document && typeof globalThis.document.cookie === "string"
    ? globalThis.document.cookie
    : "";
  for (const part of cookies.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return decodeURIComponent(value.join("="));
  }
  return null;
}
