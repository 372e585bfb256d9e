/**
 * A small client for the jobs API: submit an operation, wait for its job, cancel it.
 *
 * Dependency-free ES module, no build step:
 *
 *     import { runAsJob, submitJob } from "/static/jobs/client.js";
 *     const order = await submitJob("/api/purchases/", body, { onProgress });
 *     const report = await runAsJob("/api/reports/sales/", body, { onProgress });
 *
 * Waiting picks the cheapest transport the page and the server allow: the
 * job's Server-Sent Events stream (`EventSource`), else a long poll
 * (`?wait=25` with `If-None-Match`), else plain polling. Each falls back to
 * the next when it cannot work (no first event, a server that ignores `wait`).
 * Polling is polite: it honours `Retry-After`, otherwise backs off
 * exponentially (capped, with jitter); it sends `If-None-Match` so an
 * unchanged job costs a 304; it retries network errors, 5xx and 429 a bounded
 * number of times.
 *
 * Everything time- or network-related can be injected through the options
 * (`fetch`, `EventSource`, `setTimeout`, `clearTimeout`, `random`, `now`) for tests.
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
  /** Seconds a long poll asks the server to hold the request (`?wait=`). */
  longPollSeconds: 25,
  /** A 304 faster than this means the server ignored `wait` (twice in a row: poll instead). */
  longPollIgnoredMs: 1000,
  /** The stream must deliver its first event within this long, else long poll. */
  streamOpenTimeoutMs: 10_000,
  /** Stream errors in a row, after events arrived, before falling back to the long poll. */
  streamErrors: 3,
});

const TRANSPORTS = new Set(["auto", "events", "longpoll", "poll"]);
// EventSource.CLOSED: the browser gave up and will not reconnect.
const EVENT_SOURCE_CLOSED = 2;

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
 * @property {typeof EventSource} [EventSource] Defaults to the global `EventSource`, if any.
 * @property {typeof setTimeout} [setTimeout]
 * @property {typeof clearTimeout} [clearTimeout]
 * @property {() => number} [random] Defaults to `Math.random` (jitter).
 * @property {() => number} [now] Defaults to `Date.now` (HTTP-date `Retry-After`).
 */

/**
 * @typedef {ClientOptions & {
 *   onProgress?: (progress: Progress) => void,
 *   transport?: "auto"|"events"|"longpoll"|"poll",
 *   longPollSeconds?: number,
 *   streamOpenTimeoutMs?: number,
 *   streamErrors?: number,
 * }} WaitOptions
 *
 * `transport` "auto" (the default) uses the event stream when `EventSource`
 * exists and no `token` is set (EventSource cannot send an Authorization
 * header), else the long poll; "events", "longpoll" and "poll" start with
 * that transport (each still falls back to the next when it cannot work).
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
  return withDeadline(options, (rt, signal) => submit(rt, url, body, options, signal, {}));
}

/**
 * Call an endpoint that can run as a job, and resolve with its answer either way.
 *
 * POSTs `body` as JSON with `Prefer: respond-async` (and `, wait=N` when `wait`
 * is given: the server may then answer inline if the job finishes within N
 * seconds). A `202` is a job: waits for it and resolves with its `result`;
 * another 2xx is the action's own answer, and resolves with its body. Both are
 * the same value. A 4xx rejects with an {@link ApiError} (a 400 carries the
 * field errors in `body`), as does a job whose action answered a 4xx
 * (`result_status`).
 *
 * @param {string} url The endpoint, e.g. "/api/reports/sales/".
 * @param {*} body Serialized as JSON.
 * @param {SubmitOptions & {wait?: number}} [options] `wait` in seconds.
 * @returns {Promise<*>} The action's answer.
 */
export async function runAsJob(url, body, options = {}) {
  const { wait, ...rest } = options;
  let prefer = "respond-async";
  if (wait !== undefined && wait !== null) {
    if (!Number.isFinite(wait) || wait < 0) throw new TypeError(`wait must be a number of seconds, not ${wait}`);
    prefer += `, wait=${Math.round(wait)}`;
  }
  return withDeadline(rest, (rt, signal) => submit(rt, url, body, rest, signal, { Prefer: prefer }));
}

/**
 * Wait for an existing job until it is finished.
 *
 * Follows the job over the transport `options.transport` picks (see
 * {@link WaitOptions}). Calls `onProgress` whenever status, percentage or
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
  const transport = chooseTransport(options);
  return withDeadline(options, (rt, signal) =>
    follow(rt, jobUrl, options, signal, newWaitState(null, null), transport),
  );
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
    const url = subresource(jobUrl, "cancel");
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
    longPollSeconds: options.longPollSeconds ?? DEFAULTS.longPollSeconds,
    longPollIgnoredMs: options.longPollIgnoredMs ?? DEFAULTS.longPollIgnoredMs,
    streamOpenTimeoutMs: options.streamOpenTimeoutMs ?? DEFAULTS.streamOpenTimeoutMs,
    streamErrors: options.streamErrors ?? DEFAULTS.streamErrors,
  };
}

/** The transport to start with: "events", "longpoll" or "poll" (a TypeError for a bad option). */
function chooseTransport(options) {
  const wanted = options.transport ?? "auto";
  if (!TRANSPORTS.has(wanted)) {
    throw new TypeError(`transport must be one of ${[...TRANSPORTS].join(", ")}, not ${wanted}`);
  }
  const hasEventSource = typeof eventSourceClass(options) === "function";
  if (wanted === "events") {
    if (!hasEventSource) throw new TypeError("transport \"events\" needs EventSource, which is missing here");
    if (options.token) throw new TypeError("transport \"events\" cannot send a token; use \"longpoll\"");
    return "events";
  }
  if (wanted === "auto") return hasEventSource && !options.token ? "events" : "longpoll";
  return wanted;
}

function eventSourceClass(options) {
  return options.EventSource ?? globalThis.EventSource;
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

/** POST `body`; follow a 202's job to its result, or return an inline 2xx body. */
async function submit(rt, url, body, options, signal, extraHeaders) {
  const transport = chooseTransport(options);
  const headers = { ...requestHeaders("POST", options, { json: true }), ...extraHeaders };
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
  if (transport === "poll") {
    state.delayMs = parseRetryAfter(response.headers.get("Retry-After"), rt.now()) ?? nextBackoff(state, rt);
  }
  return follow(rt, jobUrl, options, signal, state, transport);
}

/** Follow the job until it is finished, falling back from stream to long poll to polling. */
async function follow(rt, jobUrl, options, signal, state, transport) {
  if (state.job && TERMINAL.has(state.job.status)) return outcome(state.job);
  if (transport === "events") {
    if (await stream(rt, jobUrl, options, signal, state)) return outcome(state.job);
    transport = "longpoll";
  }
  if (transport === "longpoll") {
    if (await longPoll(rt, jobUrl, options, signal, state)) return outcome(state.job);
    state.delayMs = nextBackoff(state, rt);
  }
  return poll(rt, jobUrl, options, signal, state);
}

/**
 * Follow the job's event stream. Resolves true once the job is finished, false
 * when the stream cannot be used (no first event, too many errors): long poll then.
 *
 * The browser reconnects by itself after a dropped connection, sending
 * Last-Event-ID; that is left to it, but only `streamErrors` times in a row.
 */
function stream(rt, jobUrl, options, signal, state) {
  const EventSourceClass = eventSourceClass(options);
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const source = new EventSourceClass(subresource(jobUrl, "events"));
    let events = 0;
    let errors = 0;
    let watchdog = null;

    const finish = (settle) => {
      source.close();
      if (watchdog !== null) rt.clearTimeout(watchdog);
      watchdog = null;
      for (const name of ["status", "progress", "message"]) source.removeEventListener(name, onEvent);
      source.removeEventListener("error", onError);
      signal.removeEventListener("abort", onAbort);
      settle();
    };
    const onAbort = () => finish(() => reject(signal.reason));
    const onEvent = (event) => {
      let job;
      try {
        job = JSON.parse(event.data);
      } catch {
        return; // Not a job document: nothing to learn from it.
      }
      if (!job || typeof job !== "object" || !job.status) return;
      events += 1;
      errors = 0;
      if (watchdog !== null) rt.clearTimeout(watchdog);
      watchdog = null;
      state.job = job;
      try {
        notify(state, options);
      } catch (error) {
        finish(() => reject(error));
        return;
      }
      if (TERMINAL.has(job.status)) finish(() => resolve(true));
    };
    const onError = () => {
      errors += 1;
      // Before any event the cause is hidden (401, 404, no server): the long poll
      // will show it. A CLOSED source will not reconnect.
      if (events === 0 || source.readyState === EVENT_SOURCE_CLOSED || errors >= rt.streamErrors) {
        finish(() => resolve(false));
      }
    };

    for (const name of ["status", "progress", "message"]) source.addEventListener(name, onEvent);
    source.addEventListener("error", onError);
    signal.addEventListener("abort", onAbort, { once: true });
    // A proxy that buffers the stream delivers nothing, not even an error.
    watchdog = rt.setTimeout(() => {
      watchdog = null;
      if (events === 0) finish(() => resolve(false));
    }, rt.streamOpenTimeoutMs);
  });
}

/**
 * Long-poll the job: `?wait=N` with `If-None-Match`, again at once after each answer.
 * Resolves true once the job is finished, false when the server does not hold
 * the request (two quick 304s in a row, or no ETag): poll with backoff then.
 */
async function longPoll(rt, jobUrl, options, signal, state) {
  const url = withQuery(jobUrl, "wait", rt.longPollSeconds);
  let quick = 0;
  for (;;) {
    if (state.job && TERMINAL.has(state.job.status)) return true;
    const headers = requestHeaders("GET", options, { json: false });
    const sent = state.etag;
    if (sent) headers["If-None-Match"] = sent;
    const started = rt.now();
    const response = await request(rt, url, { method: "GET", headers, cache: "no-store" }, {
      signal,
      retryAll: true,
    });
    let unchanged = true;
    if (response.status === 304 && state.job) {
      // Unchanged at the deadline: ask again.
    } else if (response.ok) {
      state.job = await readJson(response);
      state.etag = response.headers.get("ETag") || null;
      unchanged = Boolean(sent) && state.etag === sent;
      notify(state, options);
    } else {
      throw await apiError(response);
    }
    if (TERMINAL.has(state.job.status)) return true;
    // Without an ETag the server answers every request at once.
    if (!state.etag) return false;
    // Without If-None-Match the server answers at once by design.
    const ignored = Boolean(sent) && unchanged && rt.now() - started < rt.longPollIgnoredMs;
    quick = ignored ? quick + 1 : 0;
    if (quick >= 2) return false;
  }
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
  if (job.status !== "completed") throw new JobFailedError(job);
  // A job that ran an endpoint keeps the status it answered: a 4xx is the
  // same error as the inline answer would have been.
  if (Number.isInteger(job.result_status) && job.result_status >= 400) {
    throw errorFromBody(job.result_status, job.result);
  }
  return job.result;
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

/** `jobs/j1/` + "cancel" -> `jobs/j1/cancel/` (with or without the trailing slash). */
function subresource(jobUrl, name) {
  const [path, query] = splitAt(jobUrl, "?");
  return `${path.endsWith("/") ? path : `${path}/`}${name}/${query}`;
}

/** `url` with `name=value` added to its query string. */
function withQuery(url, name, value) {
  const [path, fragment] = splitAt(url, "#");
  return `${path}${path.includes("?") ? "&" : "?"}${name}=${encodeURIComponent(value)}${fragment}`;
}

/** Split before the first `separator`: ["a", "?b?c"] for "a?b?c", ["a", ""] without one. */
function splitAt(text, separator) {
  const index = text.indexOf(separator);
  return index === -1 ? [text, ""] : [text.slice(0, index), text.slice(index)];
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
  return errorFromBody(response.status, body);
}

function errorFromBody(status, body) {
  let detail;
  let code;
  if (body && typeof body === "object" && !Array.isArray(body) && typeof body.detail === "string") {
    detail = body.detail;
    code = body.code || `http_${status}`;
  } else if (body && typeof body === "object") {
    // DRF field errors: {"goods": ["..."], "quantity": [...]}.
    detail = fieldErrors(body).join(" ");
    code = status === 400 ? "invalid" : `http_${status}`;
  } else {
    detail = `The server answered ${status}.`;
    code = `http_${status}`;
  }
  return new ApiError(detail || `The server answered ${status}.`, { status, code, detail, body });
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
