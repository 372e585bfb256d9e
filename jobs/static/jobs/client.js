/**
 * A small client for the jobs API: submit an operation, wait for its job, cancel it.
 *
 * Dependency-free ES module, no build step:
 *
 *     import { submitJob } from "/static/jobs/client.js";
 *     const order = await submitJob("/api/purchases/", body, { onProgress });
 *
 * Waiting is polite: it honours `Retry-After`, otherwise backs off exponentially
 * (capped, with jitter); it sends `If-None-Match` so an unchanged job costs a 304;
 * it retries network errors, 5xx and 429 a bounded number of times.
 *
 * Everything time- or network-related can be injected through the options
 * (`fetch`, `setTimeout`, `clearTimeout`, `random`, `now`) for tests.
 *
 * @module jobs/client
 */

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Defaults of the timing and retry options, in milliseconds and counts. */
export const DEFAULTS = Object.freeze({
  /** First backoff step (the first poll waits between half of it and all of it). */
  initialDelayMs: 500,
  /** Backoff never grows past this. */
  maxDelayMs: 10_000,
  /** Consecutive network errors, 5xx or 429 answers tolerated before giving up. */
  retries: 5,
});

/**
 * @typedef {object} JobDocument
 * @property {string} id
 * @property {string} url
 * @property {string} kind
 * @property {"pending"|"processing"|"completed"|"failed"|"cancelled"} status
 * @property {{percentage: number, message: string}} progress
 * @property {*} result
 * @property {{code: string, message: string}|null} error
 * @property {boolean} cancel_requested
 */

/**
 * @typedef {object} Progress
 * @property {number} percentage 0 to 100.
 * @property {string} message What the job is doing, e.g. "Charging the payment".
 * @property {string} status The job's status.
 * @property {JobDocument} job The whole job document.
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} [token] Sent as `Authorization: Bearer <token>`; without it the
 *   session cookie authenticates and unsafe requests carry the CSRF token.
 * @property {string} [csrfToken] CSRF token; read from the `csrftoken` cookie when omitted.
 * @property {string} [csrfCookieName="csrftoken"]
 * @property {Record<string, string>} [headers] Extra request headers.
 * @property {AbortSignal} [signal] Stops waiting (the job itself goes on; see {@link cancelJob}).
 * @property {number} [timeoutMs] Give up after this long overall (rejects with a `TimeoutError`).
 * @property {number} [retries] See {@link DEFAULTS}.
 * @property {number} [initialDelayMs] See {@link DEFAULTS}.
 * @property {number} [maxDelayMs] See {@link DEFAULTS}.
 * @property {typeof fetch} [fetch] Defaults to the global `fetch`.
 * @property {typeof setTimeout} [setTimeout]
 * @property {typeof clearTimeout} [clearTimeout]
 * @property {() => number} [random] Defaults to `Math.random` (jitter).
 * @property {() => number} [now] Defaults to `Date.now` (HTTP-date `Retry-After`).
 */

/**
 * @typedef {ClientOptions & {
 *   onProgress?: (progress: Progress) => void,
 * }} WaitOptions
 */

/**
 * @typedef {WaitOptions & {
 *   idempotencyKey?: string,
 *   onSubmitted?: (submitted: {url: string, job: JobDocument}) => void,
 * }} SubmitOptions
 */

/** An HTTP answer the client cannot use: 4xx, 5xx after retries, or no answer at all. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{status: number, code: string, detail: string, body?: *, cause?: *}} info
   *   `status` is 0 when the server never answered (`code` "network_error").
   */
  constructor(message, { status, code, detail, body = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.body = body;
  }
}

/** The job ended `failed` or `cancelled`; `code` and `message` come from its `error`. */
export class JobFailedError extends Error {
  /** @param {JobDocument} job */
  constructor(job) {
    const error = job.error || {};
    super(error.message || `The job ended ${job.status}.`);
    this.name = "JobFailedError";
    this.code = error.code || job.status;
    this.status = job.status;
    this.job = job;
  }
}

/** `timeoutMs` passed before the job finished (the job itself goes on). */
export class WaitTimeoutError extends Error {
  /** @param {number} timeoutMs */
  constructor(timeoutMs) {
    super(`Gave up waiting for the job after ${timeoutMs} ms; it may still finish.`);
    this.name = "TimeoutError";
    this.code = "wait_timeout";
  }
}

/**
 * Submit an operation and wait for its job.
 *
 * POSTs `body` as JSON. A `202` with `Location` is a job: waits for it like
 * {@link waitForJob} and resolves with its `result`. Any other 2xx resolves with
 * the response body (the server answered inline). 4xx and 5xx reject with an
 * {@link ApiError} carrying `status`, `code` and `detail`. The POST itself is
 * retried after a network error or 5xx only when `idempotencyKey` makes that safe.
 *
 * @param {string} url The submission endpoint, e.g. "/api/purchases/".
 * @param {*} body Serialized as JSON.
 * @param {SubmitOptions} [options]
 * @returns {Promise<*>} The job's result (or the inline answer).
 */
export async function submitJob(url, body, options = {}) {
  return withDeadline(options, async (rt, signal) => {
    const headers = requestHeaders("POST", options, { json: true });
    if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
    const response = await request(rt, url, { method: "POST", headers, body: JSON.stringify(body) }, {
      signal,
      // Without a key a repeated POST could start a second job; a 429 was not processed.
      retryAll: Boolean(options.idempotencyKey),
    });
    if (!response.ok) throw await apiError(response);
    const document = await readJson(response);
    const location = response.headers.get("Location") || (document && document.url);
    if (response.status !== 202 || !location) return document;

    const jobUrl = resolveUrl(location, url);
    const job = document && document.status ? document : null;
    const state = newWaitState(job, job ? response.headers.get("ETag") : null);
    if (options.onSubmitted) options.onSubmitted({ url: jobUrl, job: document });
    if (state.job) notify(state, options);
    state.delayMs = parseRetryAfter(response.headers.get("Retry-After"), rt.now());
    if (state.delayMs === null) state.delayMs = nextBackoff(state, rt);
    return poll(rt, jobUrl, options, signal, state);
  });
}

/**
 * Wait for an existing job until it is finished.
 *
 * Polls `jobUrl` at once, then as `Retry-After` says, else with capped
 * exponential backoff and jitter. Sends `If-None-Match` with the last `ETag`
 * (a 304 means unchanged). Calls `onProgress` whenever status, percentage or
 * message change. Resolves with `result` when the job completes; rejects with
 * a {@link JobFailedError} when it fails or is cancelled, an {@link ApiError}
 * for HTTP errors, a {@link WaitTimeoutError} after `timeoutMs`, or the
 * signal's reason when aborted.
 *
 * @param {string} jobUrl The job's URL (the `Location` of the submission).
 * @param {WaitOptions} [options]
 * @returns {Promise<*>} The job's result.
 */
export async function waitForJob(jobUrl, options = {}) {
  return withDeadline(options, (rt, signal) => poll(rt, jobUrl, options, signal, newWaitState(null, null)));
}

/**
 * Ask the server to cancel a job.
 *
 * Resolves with the job document: status `cancelled` (it was pending, `200`), or
 * still `processing` with `cancel_requested: true` (`202`: it stops at its next
 * step, or completes if past the point of no return; keep waiting to see which).
 * A finished job rejects with an {@link ApiError}, status 409 and code `job_finished`.
 *
 * @param {string} jobUrl The job's URL.
 * @param {ClientOptions} [options]
 * @returns {Promise<JobDocument>}
 */
export async function cancelJob(jobUrl, options = {}) {
  return withDeadline(options, async (rt, signal) => {
    const url = jobUrl.endsWith("/") ? `${jobUrl}cancel/` : `${jobUrl}/cancel/`;
    const headers = requestHeaders("POST", options, { json: false });
    // Cancelling twice is harmless, so network errors and 5xx are retried.
    const response = await request(rt, url, { method: "POST", headers }, { signal, retryAll: true });
    if (!response.ok) throw await apiError(response);
    return readJson(response);
  });
}

/**
 * Milliseconds a `Retry-After` header asks for (delay-seconds or an HTTP date), or null.
 *
 * @param {string|null} value
 * @param {number} [now] Milliseconds since the epoch, for HTTP dates.
 * @returns {number|null}
 */
export function parseRetryAfter(value, now = Date.now()) {
  if (value === null || value === undefined) return null;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its month ("Wed, 21 Oct 2015 07:28:00 GMT"); Date.parse
  // would also take "-1" or "2" as years.
  const when = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(when) ? null : Math.max(0, when - now);
}

/**
 * The wait before poll or retry number `attempt` (0-based): capped exponential, equal jitter.
 *
 * The step doubles from `initialDelayMs` up to `maxDelayMs`; the wait is
 * between half the step and the whole step, so clients that started together
 * spread out without ever polling in a tight loop.
 *
 * @param {number} attempt
 * @param {{initialDelayMs?: number, maxDelayMs?: number, random?: () => number}} [options]
 * @returns {number}
 */
export function backoffDelay(attempt, options = {}) {
  const initial = options.initialDelayMs ?? DEFAULTS.initialDelayMs;
  const ceiling = Math.min(options.maxDelayMs ?? DEFAULTS.maxDelayMs, initial * 2 ** attempt);
  const random = options.random ?? Math.random;
  return ceiling / 2 + random() * (ceiling / 2);
}

// --- Internals -------------------------------------------------------------

function runtime(options) {
  return {
    fetch: options.fetch ?? ((...args) => globalThis.fetch(...args)),
    setTimeout: options.setTimeout ?? ((...args) => globalThis.setTimeout(...args)),
    clearTimeout: options.clearTimeout ?? ((id) => globalThis.clearTimeout(id)),
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
    retries: options.retries ?? DEFAULTS.retries,
    initialDelayMs: options.initialDelayMs ?? DEFAULTS.initialDelayMs,
    maxDelayMs: options.maxDelayMs ?? DEFAULTS.maxDelayMs,
  };
}

/** Run `work` with one signal that fires on the caller's abort or at `timeoutMs`. */
async function withDeadline(options, work) {
  const rt = runtime(options);
  const outer = options.signal;
  if (outer && outer.aborted) throw abortReason(outer);
  const controller = new AbortController();
  const onAbort = () => controller.abort(abortReason(outer));
  if (outer) outer.addEventListener("abort", onAbort, { once: true });
  let timer = null;
  if (options.timeoutMs !== undefined && options.timeoutMs !== null) {
    timer = rt.setTimeout(() => controller.abort(new WaitTimeoutError(options.timeoutMs)), options.timeoutMs);
  }
  try {
    return await work(rt, controller.signal);
  } finally {
    if (timer !== null) rt.clearTimeout(timer);
    if (outer) outer.removeEventListener("abort", onAbort);
  }
}

function abortReason(signal) {
  if (signal.reason !== undefined) return signal.reason;
  const error = new Error("The wait was aborted.");
  error.name = "AbortError";
  return error;
}

function newWaitState(job, etag) {
  return { job, etag, delayMs: null, polls: 0, lastKey: null };
}

async function poll(rt, jobUrl, options, signal, state) {
  for (;;) {
    if (state.job && TERMINAL.has(state.job.status)) return outcome(state.job);
    if (state.delayMs !== null) await sleep(rt, state.delayMs, signal);
    const headers = requestHeaders("GET", options, { json: false });
    if (state.etag) headers["If-None-Match"] = state.etag;
    const response = await request(rt, jobUrl, { method: "GET", headers, cache: "no-store" }, {
      signal,
      retryAll: true,
    });
    if (response.status === 304 && state.job) {
      // Unchanged: nothing to report.
    } else if (response.ok) {
      state.job = await readJson(response);
      state.etag = response.headers.get("ETag") || null;
      notify(state, options);
    } else {
      throw await apiError(response);
    }
    const asked = parseRetryAfter(response.headers.get("Retry-After"), rt.now());
    state.delayMs = asked ?? nextBackoff(state, rt);
  }
}

function nextBackoff(state, rt) {
  return backoffDelay(state.polls++, rt);
}

function notify(state, options) {
  const { job } = state;
  const progress = job.progress || {};
  const key = JSON.stringify([job.status, progress.percentage, progress.message]);
  if (key === state.lastKey) return;
  state.lastKey = key;
  if (options.onProgress) {
    options.onProgress({
      percentage: progress.percentage ?? 0,
      message: progress.message ?? "",
      status: job.status,
      job,
    });
  }
}

function outcome(job) {
  if (job.status === "completed") return job.result;
  throw new JobFailedError(job);
}

/**
 * Fetch once, retrying what is worth retrying; return the first other response.
 *
 * 429 is always retried (the server did not process the request); network
 * errors and 5xx only when `retryAll` (safe or idempotent requests). Waits as
 * `Retry-After` says, else by backoff, `retries` times at most.
 */
async function request(rt, url, init, { signal, retryAll }) {
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

function raceAbort(promise, signal) {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

function sleep(rt, ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      rt.clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = rt.setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function requestHeaders(method, options, { json }) {
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

function resolveUrl(location, base) {
  try {
    return new URL(location, new URL(base, globalThis.location && globalThis.location.href)).href;
  } catch {
    // A relative base outside a browser: the server's path is as good as it gets.
    return location;
  }
}

async function readJson(response) {
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

async function apiError(response) {
  let body = null;
  try {
    body = await readJson(response);
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  let detail;
  let code;
  if (body && typeof body === "object" && !Array.isArray(body) && typeof body.detail === "string") {
    detail = body.detail;
    code = body.code || `http_${response.status}`;
  } else if (body && typeof body === "object") {
    // DRF field errors: {"goods": ["..."], "quantity": [...]}.
    detail = fieldErrors(body).join(" ");
    code = response.status === 400 ? "invalid" : `http_${response.status}`;
  } else {
    detail = `The server answered ${response.status}.`;
    code = `http_${response.status}`;
  }
  return new ApiError(detail || `The server answered ${response.status}.`, {
    status: response.status,
    code,
    detail,
    body,
  });
}

function fieldErrors(value, path = "") {
  if (typeof value === "string") return [path ? `${path}: ${value}` : value];
  if (Array.isArray(value)) {
    if (value.every((item) => typeof item === "string")) return value.flatMap((item) => fieldErrors(item, path));
    // A list serializer's errors: one entry per item, {} for the valid ones.
    return value.flatMap((item, index) => fieldErrors(item, `${path}[${index}]`));
  }
  if (value && typeof value === "object") {
    return Object.entries(value).flatMap(([key, item]) =>
      fieldErrors(item, key === "non_field_errors" ? path : path ? `${path}.${key}` : key),
    );
  }
  return [];
}
