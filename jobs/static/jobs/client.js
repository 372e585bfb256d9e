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
 * This module holds the public entry points and re-exports the rest of the
 * public API; the work is done by its neighbours: `transports.js` (stream, long
 * poll, polling), `http.js` (requests, retries, headers), `timing.js` (defaults,
 * backoff, deadlines) and `errors.js`.
 *
 * @module jobs/client
 */

import { apiError, readJson, request, requestHeaders, resolveUrl, subresource } from "./http.js";
import { chooseTransport, follow, newWaitState, nextBackoff, notify } from "./transports.js";
import { parseRetryAfter, withDeadline } from "./timing.js";
import { jobOptionsHeader } from "./options.js";

export { ApiError, JobDeletedError, JobFailedError, JobGoneError, WaitTimeoutError } from "./errors.js";
export { DEFAULTS, backoffDelay, parseRetryAfter } from "./timing.js";
export { jobOptionsHeader } from "./options.js";

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
 *   jobOptions?: import("./options.js").JobOptions,
 *   onSubmitted?: (submitted: {url: string, job: JobDocument}) => void,
 * }} SubmitOptions
 */

/**
 * Submit an operation and wait for its job.
 *
 * POSTs `body` as JSON. A `202` with `Location` is a job: waits for it like
 * {@link waitForJob} and resolves with its `result`. Any other 2xx resolves with
 * the response body (the server answered inline). 4xx and 5xx reject with an
 * {@link ApiError} carrying `status`, `code` and `detail`. The POST itself is
 * retried after a network error or 5xx only when `idempotencyKey` makes that safe.
 * `jobOptions` (`{timeout, ttl, priority, runAt, callback}`) are sent as the
 * `Job-Options` header; the server refuses values out of its bounds with a 400.
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
 * a {@link JobFailedError} when it fails or is cancelled, a
 * {@link JobDeletedError} when it is deleted meanwhile (purged, expired) or a
 * {@link JobGoneError} (one of those) when the server says when and why (`410`), an
 * {@link ApiError} for other HTTP errors, a {@link WaitTimeoutError} after `timeoutMs`, or the
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
 * A finished job rejects with an {@link ApiError}, status 409 and code `job_finished`;
 * a removed one with a {@link JobGoneError} (status 410).
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

// --- Internals -------------------------------------------------------------

/** POST `body`; follow a 202's job to its result, or return an inline 2xx body. */
async function submit(rt, url, body, options, signal, extraHeaders) {
  const transport = chooseTransport(options);
  const headers = { ...requestHeaders("POST", options, { json: true }), ...extraHeaders };
  if (options.idempotencyKey) headers["Idempotency-Key"] = options.idempotencyKey;
  const jobOptions = jobOptionsHeader(options.jobOptions);
  if (jobOptions) headers["Job-Options"] = jobOptions;
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
