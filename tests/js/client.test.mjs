// Unit tests of jobs/static/jobs/client.js: node --test tests/js/
//
// A scripted fake fetch answers each request in turn; a fake clock owns every
// timer, so a test runs in microseconds and can assert the exact waits. These
// tests poll (`transport: "poll"`); transports.test.mjs covers the choice of
// stream, long poll or polling.

import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";

import {
  ApiError,
  DEFAULTS,
  JobFailedError,
  backoffDelay,
  cancelJob,
  parseRetryAfter,
  submitJob,
  waitForJob,
} from "../../jobs/static/jobs/client.js";
import { BASE, JOB_URL, START, drive, flush, job, respond, setup } from "./fakes.mjs";

const accepted = (doc = job("pending"), headers = {}) =>
  respond(202, doc, { Location: "/api/jobs/j1/", "Retry-After": "1", ETag: '"e0"', ...headers });

afterEach(() => {
  delete globalThis.document;
});

// --- submitJob ----------------------------------------------------------------

describe("submitJob", () => {
  test("posts JSON with the CSRF cookie, follows Location and honours Retry-After", async () => {
    globalThis.document = { cookie: "sessionid=s1; csrftoken=abc%3D123; theme=dark" };
    const { clock, calls, progress, opts } = setup([
      accepted(),
      respond(200, job("processing", 40, "Charging the payment"), { ETag: '"e1"', "Retry-After": "1" }),
      respond(304, null, { ETag: '"e1"', "Retry-After": "1" }),
      respond(200, job("completed", 100, "Order confirmed", { result: { order_id: 7 } }), { ETag: '"e2"' }),
    ]);
    const body = { goods: [{ product_id: 1, quantity: 2 }] };

    const { value, error } = await drive(submitJob(`${BASE}/api/purchases/`, body, opts), clock);

    assert.equal(error, undefined);
    assert.deepEqual(value, { order_id: 7 });
    const [post, ...polls] = calls;
    assert.equal(post.url, `${BASE}/api/purchases/`);
    assert.equal(post.method, "POST");
    assert.equal(post.init.body, JSON.stringify(body));
    assert.equal(post.init.credentials, "same-origin");
    assert.equal(post.headers["Content-Type"], "application/json");
    assert.equal(post.headers.Accept, "application/json");
    assert.equal(post.headers["X-CSRFToken"], "abc=123");
    assert.equal(post.headers.Authorization, undefined);
    assert.deepEqual(polls.map((c) => [c.method, c.url]), Array(3).fill(["GET", JOB_URL]));
    assert.deepEqual(polls.map((c) => c.headers["If-None-Match"]), ['"e0"', '"e1"', '"e1"']);
    assert.ok(polls.every((c) => c.headers["X-CSRFToken"] === undefined), "no CSRF token on GET");
    assert.deepEqual(clock.fired, [1000, 1000, 1000], "one second between polls, as Retry-After says");
    assert.deepEqual(progress, [
      ["pending", 0, ""],
      ["processing", 40, "Charging the payment"],
      ["completed", 100, "Order confirmed"],
    ]);
    assert.equal(clock.pending(), 0);
  });

  test("sends a bearer token instead of the CSRF token, and the idempotency key on the POST only", async () => {
    globalThis.document = { cookie: "csrftoken=abc" };
    const { clock, calls, opts } = setup(
      [accepted(), respond(200, job("completed", 100, "", { result: "ok" }), { ETag: '"e1"' })],
      { token: "t0k", idempotencyKey: "key-1" },
    );

    const { value } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.equal(value, "ok");
    for (const call of calls) {
      assert.equal(call.headers.Authorization, "Bearer t0k");
      assert.equal(call.headers["X-CSRFToken"], undefined);
    }
    assert.equal(calls[0].headers["Idempotency-Key"], "key-1");
    assert.equal(calls[1].headers["Idempotency-Key"], undefined);
  });

  test("calls onSubmitted with the job URL, and needs no poll for a job already finished", async () => {
    const submitted = [];
    const done = job("completed", 100, "Order confirmed", { result: { order_id: 3 } });
    const { clock, calls, progress, opts } = setup([respond(202, done, { Location: "/api/jobs/j1/" })], {
      onSubmitted: (s) => submitted.push(s),
    });

    const { value } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.deepEqual(value, { order_id: 3 });
    assert.equal(calls.length, 1);
    assert.deepEqual(submitted, [{ url: JOB_URL, job: done }]);
    assert.deepEqual(progress, [["completed", 100, "Order confirmed"]]);
  });

  test("keeps a relative Location when the submission URL is relative too", async () => {
    const submitted = [];
    const { clock, calls, opts } = setup(
      [accepted(), respond(200, job("completed", 100, "", { result: 1 }))],
      { onSubmitted: (s) => submitted.push(s.url) },
    );

    await drive(submitJob("/api/purchases/", {}, opts), clock);

    assert.deepEqual(submitted, ["/api/jobs/j1/"]);
    assert.equal(calls[1].url, "/api/jobs/j1/");
  });

  test("resolves with the body of a 2xx that is not a 202", async () => {
    const { clock, calls, opts } = setup([respond(200, { inline: true })]);

    const { value } = await drive(submitJob(`${BASE}/api/report/`, {}, opts), clock);

    assert.deepEqual(value, { inline: true });
    assert.equal(calls.length, 1);
  });

  test("rejects a 400 with status, code and the field errors as detail, without retrying", async () => {
    const errors = { goods: [{}, { quantity: ["Ensure this value is greater than or equal to 1."] }] };
    const { clock, calls, opts } = setup([respond(400, errors)], { idempotencyKey: "k" });

    const { error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "invalid");
    assert.equal(error.detail, "goods[1].quantity: Ensure this value is greater than or equal to 1.");
    assert.equal(error.message, error.detail);
    assert.deepEqual(error.body, errors);
    assert.equal(calls.length, 1);
  });

  test("rejects an error document with its detail and code", async () => {
    const { clock, opts } = setup([
      respond(422, { detail: "This Idempotency-Key was already used.", code: "idempotency_key_reused" }),
    ]);

    const { error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.equal(error.status, 422);
    assert.equal(error.code, "idempotency_key_reused");
    assert.equal(error.detail, "This Idempotency-Key was already used.");
  });

  test("retries the POST after a 5xx or a network error only with an idempotency key", async () => {
    const withKey = setup([respond(503), new TypeError("fetch failed"), accepted(job("completed"))], {
      idempotencyKey: "k1",
      random: () => 0,
    });
    const retried = await drive(submitJob(`${BASE}/api/purchases/`, {}, withKey.opts), withKey.clock);
    assert.equal(retried.error, undefined);
    assert.equal(withKey.calls.length, 3);
    assert.ok(withKey.calls.every((c) => c.method === "POST" && c.headers["Idempotency-Key"] === "k1"));
    assert.deepEqual(withKey.clock.fired, [250, 500]);

    const noKey = setup([respond(503, { detail: "Down for maintenance." })]);
    const { error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, noKey.opts), noKey.clock);
    assert.equal(error.status, 503);
    assert.equal(error.detail, "Down for maintenance.");
    assert.equal(noKey.calls.length, 1, "a POST without a key could start a second job");

    const offline = setup([new TypeError("fetch failed")]);
    const gone = await drive(submitJob(`${BASE}/api/purchases/`, {}, offline.opts), offline.clock);
    assert.equal(gone.error.code, "network_error");
    assert.equal(gone.error.status, 0);
    assert.equal(offline.calls.length, 1);
  });

  test("retries a throttled POST (429) after Retry-After, key or not", async () => {
    const { clock, calls, opts } = setup([
      respond(429, { detail: "Request was throttled.", code: "throttled" }, { "Retry-After": "3" }),
      accepted(job("completed", 100, "", { result: 1 })),
    ]);

    const { value } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.equal(value, 1);
    assert.equal(calls.length, 2);
    assert.deepEqual(clock.fired, [3000]);
  });
});

// --- waitForJob: timing -------------------------------------------------------

describe("waitForJob timing", () => {
  test("backs off exponentially, capped, when the server sends no Retry-After", async () => {
    const sequence = async (random) => {
      const pending = Array.from({ length: 8 }, () => respond(200, job("pending")));
      const { clock, opts } = setup([...pending, respond(200, job("completed"))], { random });
      const { error } = await drive(waitForJob(JOB_URL, opts), clock);
      assert.equal(error, undefined);
      return clock.fired;
    };
    const ceilings = [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000];

    assert.deepEqual(await sequence(() => 0), ceilings.map((c) => c / 2));
    assert.deepEqual(await sequence(() => 1), ceilings);
    const jittered = await sequence(Math.random);
    jittered.forEach((wait, i) => {
      assert.ok(wait >= ceilings[i] / 2 && wait <= ceilings[i], `wait ${i}: ${wait} outside jitter bounds`);
    });
  });

  test("backoffDelay: equal jitter between half the step and the step, capped", () => {
    const options = { initialDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(DEFAULTS.initialDelayMs, 500);
    assert.equal(backoffDelay(0, { ...options, random: () => 0 }), 50);
    assert.equal(backoffDelay(3, { ...options, random: () => 0.5 }), 600);
    assert.equal(backoffDelay(10, { ...options, random: () => 0 }), 500);
    assert.equal(backoffDelay(10, { ...options, random: () => 1 }), 1000);
    for (let attempt = 0; attempt < 12; attempt += 1) {
      const wait = backoffDelay(attempt);
      const step = Math.min(DEFAULTS.maxDelayMs, DEFAULTS.initialDelayMs * 2 ** attempt);
      assert.ok(wait >= step / 2 && wait <= step, `attempt ${attempt}: ${wait}`);
    }
  });

  test("honours Retry-After in seconds and as an HTTP date", async () => {
    const inFiveSeconds = new Date(START + 5000).toUTCString();
    const { clock, calls, opts } = setup([
      respond(200, job("processing", 10), { "Retry-After": "3" }),
      respond(200, job("processing", 20), { "Retry-After": inFiveSeconds }),
      respond(200, job("processing", 30), { "Retry-After": "0" }),
      respond(200, job("completed", 100)),
    ]);

    await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(calls.length, 4);
    assert.deepEqual(clock.fired, [3000, 2000, 0], "the date is 5 s after the start, 3 s of which had passed");
  });

  test("parseRetryAfter", () => {
    assert.equal(parseRetryAfter("2"), 2000);
    assert.equal(parseRetryAfter(" 0 "), 0);
    assert.equal(parseRetryAfter(new Date(START + 7000).toUTCString(), START), 7000);
    assert.equal(parseRetryAfter(new Date(START - 7000).toUTCString(), START), 0);
    assert.equal(parseRetryAfter("soon"), null);
    assert.equal(parseRetryAfter("-1"), null);
    assert.equal(parseRetryAfter(null), null);
  });

  test("sends the latest ETag; a 304 keeps the job and reports nothing", async () => {
    const { clock, calls, progress, opts } = setup([
      respond(200, job("processing", 10, "Reserving stock"), { ETag: '"a"', "Retry-After": "1" }),
      respond(304, null, { ETag: '"a"', "Retry-After": "1" }),
      respond(304, null, { ETag: '"a"', "Retry-After": "1" }),
      respond(200, job("processing", 40, "Charging the payment"), { ETag: '"b"', "Retry-After": "1" }),
      respond(304, null, { ETag: '"b"', "Retry-After": "1" }),
      respond(200, job("completed", 100, "Order confirmed", { result: { order_id: 1 } }), { ETag: '"c"' }),
    ]);

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.deepEqual(value, { order_id: 1 });
    assert.deepEqual(
      calls.map((c) => c.headers["If-None-Match"]),
      [undefined, '"a"', '"a"', '"a"', '"b"', '"b"'],
    );
    assert.ok(calls.every((c) => c.init.cache === "no-store"));
    assert.deepEqual(progress, [
      ["processing", 10, "Reserving stock"],
      ["processing", 40, "Charging the payment"],
      ["completed", 100, "Order confirmed"],
    ]);
  });

  test("reports a change of message alone, and nothing for an identical document", async () => {
    const { clock, progress, opts } = setup([
      respond(200, job("processing", 10, "A"), { ETag: '"1"' }),
      respond(200, job("processing", 10, "A"), { ETag: '"1b"' }),
      respond(200, job("processing", 10, "B"), { ETag: '"2"' }),
      respond(200, job("completed", 10, "B"), { ETag: '"3"' }),
    ]);

    await drive(waitForJob(JOB_URL, opts), clock);

    assert.deepEqual(progress, [
      ["processing", 10, "A"],
      ["processing", 10, "B"],
      ["completed", 10, "B"],
    ]);
  });
});

// --- waitForJob: abort and timeout ----------------------------------------------

describe("waitForJob abort and timeout", () => {
  test("an abort during the wait between polls rejects with the signal's reason at once", async () => {
    const controller = new AbortController();
    const { clock, calls, opts } = setup([respond(200, job("pending"), { "Retry-After": "5" })], {
      signal: controller.signal,
    });
    let outcome = null;
    waitForJob(JOB_URL, opts).catch((error) => (outcome = error));
    await flush();
    assert.equal(calls.length, 1);
    assert.equal(clock.pending(), 1, "sleeping until the next poll");

    const reason = new Error("the user left the page");
    controller.abort(reason);
    await flush();

    assert.equal(outcome, reason);
    assert.equal(clock.pending(), 0, "the sleep's timer is cleared");
    assert.equal(calls.length, 1);
  });

  test("an abort during a request rejects even if fetch never answers", async () => {
    const controller = new AbortController();
    const { calls, opts } = setup([() => new Promise(() => {})], { signal: controller.signal });
    let outcome = null;
    waitForJob(JOB_URL, opts).catch((error) => (outcome = error));
    await flush();
    assert.equal(calls.length, 1);
    assert.ok(calls[0].init.signal instanceof AbortSignal, "fetch gets a signal to cancel the request");

    controller.abort();
    await flush();

    assert.equal(outcome?.name, "AbortError");
    assert.equal(calls[0].init.signal.aborted, true);
  });

  test("an already aborted signal rejects without a request", async () => {
    const { clock, calls, opts } = setup([], { signal: AbortSignal.abort(new Error("stop")) });

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error.message, "stop");
    assert.equal(calls.length, 0);
  });

  test("timeoutMs rejects with a TimeoutError and stops polling", async () => {
    const { clock, calls, opts } = setup([], {
      fallback: respond(200, job("processing", 50, "Working"), { "Retry-After": "1" }),
      timeoutMs: 3500,
    });

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error.name, "TimeoutError");
    assert.equal(error.code, "wait_timeout");
    assert.equal(calls.length, 4, "polls at 0, 1, 2 and 3 s");
    assert.equal(clock.now() - START, 3500);
    assert.equal(clock.pending(), 0);
    await flush();
    assert.equal(calls.length, 4, "nothing polls after the timeout");
  });

  test("the timeout timer is cleared when the job finishes first", async () => {
    const { clock, opts } = setup([respond(200, job("completed", 100, "", { result: 5 }))], {
      timeoutMs: 60_000,
    });

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 5);
    assert.equal(clock.pending(), 0);
    assert.deepEqual(clock.fired, []);
  });
});

// --- waitForJob: errors -----------------------------------------------------------

describe("waitForJob errors", () => {
  test("retries network errors and 5xx with backoff or Retry-After, then goes on", async () => {
    const { clock, calls, opts } = setup(
      [
        new TypeError("fetch failed"),
        respond(502),
        respond(503, { detail: "Busy" }, { "Retry-After": "2" }),
        respond(200, job("completed", 100, "", { result: "done" })),
      ],
      { random: () => 0 },
    );

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, "done");
    assert.equal(calls.length, 4);
    assert.deepEqual(clock.fired, [250, 500, 2000]);
  });

  test("gives up after `retries` consecutive network errors", async () => {
    const { clock, calls, opts } = setup([], { fallback: new TypeError("fetch failed"), retries: 2 });

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.code, "network_error");
    assert.equal(error.status, 0);
    assert.ok(error.cause instanceof TypeError);
    assert.equal(calls.length, 3);
  });

  test("gives up after `retries` consecutive 5xx with the last answer", async () => {
    const { clock, calls, opts } = setup([], { fallback: respond(500, { detail: "Server Error" }), retries: 3 });

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error.status, 500);
    assert.equal(error.detail, "Server Error");
    assert.equal(calls.length, 4);
  });

  test("the retry budget is per request: a good answer resets it", async () => {
    const pending = (s) => respond(200, job("processing", s), { "Retry-After": "1" });
    const { clock, opts } = setup(
      [respond(500), pending(1), respond(500), pending(2), respond(500), respond(200, job("completed"))],
      { retries: 1 },
    );

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error, undefined);
  });

  test("a 429 while polling waits as Retry-After says", async () => {
    const { clock, calls, opts } = setup([
      respond(429, { detail: "Request was throttled.", code: "throttled" }, { "Retry-After": "7" }),
      respond(200, job("completed")),
    ]);

    await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(calls.length, 2);
    assert.deepEqual(clock.fired, [7000]);
  });

  test("a 404 rejects at once with the server's detail", async () => {
    const { clock, calls, opts } = setup([respond(404, { detail: "Not found." })]);

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error.status, 404);
    assert.equal(error.detail, "Not found.");
    assert.equal(error.code, "http_404");
    assert.equal(calls.length, 1);
  });

  test("a failed job rejects with its code, message and the job", async () => {
    const error = { code: "insufficient_stock", message: "Not enough stock (Keyboard: 1 left)." };
    const failed = job("failed", 10, "Reserving stock", { error });
    const { clock, progress, opts } = setup([
      respond(200, job("processing", 10, "Reserving stock"), { "Retry-After": "1" }),
      respond(200, failed),
    ]);

    const outcome = await drive(waitForJob(JOB_URL, opts), clock);

    assert.ok(outcome.error instanceof JobFailedError);
    assert.ok(outcome.error instanceof Error);
    assert.equal(outcome.error.code, "insufficient_stock");
    assert.equal(outcome.error.message, "Not enough stock (Keyboard: 1 left).");
    assert.equal(outcome.error.status, "failed");
    assert.deepEqual(outcome.error.job, failed);
    assert.deepEqual(progress.at(-1), ["failed", 10, "Reserving stock"]);
  });

  test("a cancelled job rejects with code cancelled", async () => {
    const cancelled = job("cancelled", 40, "Charging the payment", {
      error: { code: "cancelled", message: "The job was cancelled." },
      cancel_requested: true,
    });
    const { clock, opts } = setup([respond(200, cancelled)]);

    const { error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.ok(error instanceof JobFailedError);
    assert.equal(error.code, "cancelled");
    assert.equal(error.message, "The job was cancelled.");
    assert.equal(error.job.status, "cancelled");
  });
});

// --- cancelJob ----------------------------------------------------------------------

describe("cancelJob", () => {
  test("posts to the job's cancel URL with the CSRF token and returns the job", async () => {
    const cancelled = job("cancelled", 0, "", { error: { code: "cancelled", message: "x" } });
    const { clock, calls, opts } = setup([respond(200, cancelled)], { csrfToken: "tok-from-option" });

    const { value } = await drive(cancelJob(JOB_URL, opts), clock);

    assert.deepEqual(value, cancelled);
    assert.equal(calls[0].url, `${JOB_URL}cancel/`);
    assert.equal(calls[0].method, "POST");
    assert.equal(calls[0].headers["X-CSRFToken"], "tok-from-option");
    assert.equal(calls[0].init.body, undefined);
  });

  test("202 returns the processing job with cancel_requested; a URL without a slash works", async () => {
    const winding = job("processing", 40, "Charging the payment", { cancel_requested: true });
    const { clock, calls, opts } = setup([respond(202, winding)], { token: "t" });

    const { value } = await drive(cancelJob(`${BASE}/api/jobs/j1`, opts), clock);

    assert.equal(value.cancel_requested, true);
    assert.equal(calls[0].url, `${BASE}/api/jobs/j1/cancel/`);
    assert.equal(calls[0].headers.Authorization, "Bearer t");
  });

  test("409 for a finished job rejects with code job_finished", async () => {
    const { clock, opts } = setup([
      respond(409, { detail: "The job is already completed and can no longer be cancelled.", code: "job_finished" }),
    ]);

    const { error } = await drive(cancelJob(JOB_URL, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 409);
    assert.equal(error.code, "job_finished");
  });

  test("is retried after a network error (cancelling twice is harmless)", async () => {
    const { clock, calls, opts } = setup([new TypeError("fetch failed"), respond(200, job("cancelled"))]);

    const { value } = await drive(cancelJob(JOB_URL, opts), clock);

    assert.equal(value.status, "cancelled");
    assert.equal(calls.length, 2);
  });
});
