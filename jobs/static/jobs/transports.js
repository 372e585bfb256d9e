/**
 * The three ways of waiting for a job, and the fallback from one to the next:
 * its Server-Sent Events stream, a long poll (`?wait=N` with `If-None-Match`),
 * and plain polling with backoff.
 *
 * Each takes the same wait state (`newWaitState`): the last job document, its
 * ETag, the next poll's delay, the polls so far and the last progress reported.
 *
 * @module jobs/transports
 */

import { JobDeletedError, JobFailedError, JobGoneError, errorFromBody } from "./errors.js";
import { apiError, readJson, request, requestHeaders, subresource, withQuery } from "./http.js";
import { backoffDelay, parseRetryAfter, sleep } from "./timing.js";

const TERMINAL = new Set(["completed", "failed", "cancelled"]);
const TRANSPORTS = new Set(["auto", "events", "longpoll", "poll"]);
// EventSource.CLOSED: the browser gave up and will not reconnect.
const EVENT_SOURCE_CLOSED = 2;
// The stream's events that carry the job document.
const JOB_EVENTS = ["status", "progress", "message"];

/** The transport to start with: "events", "longpoll" or "poll" (a TypeError for a bad option). */
export function chooseTransport(options) {
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

/** What waiting knows so far: the job (or null) and its ETag. */
export function newWaitState(job, etag) {
  return { job, etag, delayMs: null, polls: 0, lastKey: null };
}

/** Follow the job until it is finished, falling back from stream to long poll to polling. */
export async function follow(rt, jobUrl, options, signal, state, transport) {
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

/** The delay before the next poll, by backoff; counts the poll. */
export function nextBackoff(state, rt) {
  return backoffDelay(state.polls++, rt);
}

/** Call `onProgress` with the state's job, unless status, percentage and message are as last time. */
export function notify(state, options) {
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

function eventSourceClass(options) {
  return options.EventSource ?? globalThis.EventSource;
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
      for (const name of JOB_EVENTS) source.removeEventListener(name, onEvent);
      source.removeEventListener("deleted", onDeleted);
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
    // The server's last word when the job is deleted while watched: nothing
    // more will come, and a reconnection would only find a 404 or a 410.
    const onDeleted = (event) => finish(() => reject(deletedError(jobUrl, event)));
    const onError = () => {
      errors += 1;
      // Before any event the cause is hidden (401, 404, no server): the long poll
      // will show it. A CLOSED source will not reconnect.
      if (events === 0 || source.readyState === EVENT_SOURCE_CLOSED || errors >= rt.streamErrors) {
        finish(() => resolve(false));
      }
    };

    for (const name of JOB_EVENTS) source.addEventListener(name, onEvent);
    source.addEventListener("deleted", onDeleted);
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
      throw await waitError(response, jobUrl, state);
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

/** Poll the job with `If-None-Match`, waiting as `Retry-After` says or by backoff; resolve with its outcome. */
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
      throw await waitError(response, jobUrl, state);
    }
    const asked = parseRetryAfter(response.headers.get("Retry-After"), rt.now());
    state.delayMs = asked ?? nextBackoff(state, rt);
  }
}

/** The error a `deleted` event means: a {@link JobGoneError} when its data says when and why. */
function deletedError(jobUrl, event) {
  let body = null;
  try {
    body = JSON.parse(event && event.data);
  } catch {
    // No data, or not JSON: deleted, nothing more is known.
  }
  if (body && typeof body === "object" && body.code === "job_gone") return new JobGoneError(jobUrl, body);
  return new JobDeletedError(jobUrl);
}

/**
 * The error for a failed poll: a 410 is the job gone (a {@link JobGoneError});
 * a 404 for a job seen before means it was deleted meanwhile.
 */
async function waitError(response, jobUrl, state) {
  const error = await apiError(response);
  if (error instanceof JobGoneError) {
    error.url = jobUrl;
    return error;
  }
  if (response.status === 404 && state.job) return new JobDeletedError(jobUrl, { cause: error });
  return error;
}

/** A finished job's result, or the error it ended with. */
function outcome(job) {
  if (job.status !== "completed") throw new JobFailedError(job);
  // A job that ran an endpoint keeps the status it answered: a 4xx is the
  // same error as the inline answer would have been.
  if (Number.isInteger(job.result_status) && job.result_status >= 400) {
    throw errorFromBody(job.result_status, job.result);
  }
  return job.result;
}
