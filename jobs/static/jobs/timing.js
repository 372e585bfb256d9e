/**
 * Time in the jobs client: the default delays and limits, backoff, `Retry-After`,
 * abortable sleeps, and the deadline every public call runs under.
 *
 * Everything time- or network-related comes from the options when given
 * (`fetch`, `setTimeout`, `clearTimeout`, `random`, `now`), so tests can drive it.
 *
 * @module jobs/timing
 */

import { WaitTimeoutError } from "./errors.js";

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

/**
 * Run `work(rt, signal)` with one signal that fires on the caller's abort or at `timeoutMs`.
 *
 * `rt` is the options with every default filled in (see {@link DEFAULTS}).
 */
export async function withDeadline(options, work) {
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

/** Resolve after `ms`; reject with the signal's reason as soon as it aborts. */
export function sleep(rt, ms, signal) {
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

/** Settle as `promise` does, or reject with the signal's reason if it aborts first. */
export function raceAbort(promise, signal) {
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

function abortReason(signal) {
  if (signal.reason !== undefined) return signal.reason;
  const error = new Error("The wait was aborted.");
  error.name = "AbortError";
  return error;
}
