// The client's choice of transport (event stream, long poll, polling) and runAsJob:
// node --test tests/js/
//
// The fake EventSource is driven by the test; the fake fetch answers long polls
// after a delay on the fake clock, as a server holding the request would.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ApiError,
  JobDeletedError,
  JobFailedError,
  runAsJob,
  submitJob,
  waitForJob,
} from "../../jobs/static/jobs/client.js";
import { BASE, JOB_URL, drive, fakeEventSource, flush, job, later, respond, settle, setup } from "./fakes.mjs";

const EVENTS_URL = `${JOB_URL}events/`;
const LONG_POLL_URL = `${JOB_URL}?wait=25`;
const REPORT_URL = `${BASE}/api/reports/sales/`;

const REPORT = {
  date_from: "2026-10-28",
  date_to: "2026-11-27",
  currency: "EUR",
  orders: 2,
  products: [{ product_id: 3, sku: "MUG-01", name: "Mug", quantity: 4, total: "31.60" }],
  total: "31.60",
};

const accepted = (doc = job("pending")) =>
  respond(202, doc, { Location: "/api/jobs/j1/", "Retry-After": "1", ETag: '"e0"' });

/** `setup` for the transport under test: "auto" unless told. */
function start(script, options = {}) {
  return setup(script, { transport: "auto", ...options });
}

// --- Choosing -------------------------------------------------------------------

describe("transport choice", () => {
  test("with EventSource the stream is used: no request, progress from its events", async () => {
    const sse = fakeEventSource();
    const { clock, calls, progress, opts } = start([], { EventSource: sse.EventSource });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    assert.equal(sse.instances.length, 1);
    const [source] = sse.instances;
    assert.equal(source.url, EVENTS_URL);
    source.emit("status", job("processing", 10, "Reading orders"), "a");
    source.emit("progress", job("processing", 60, "Summing orders"), "b");
    source.emit("progress", job("processing", 60, "Summing orders"), "b2");
    source.emit("status", job("completed", 100, "Done", { result: REPORT, result_status: 200 }), "c");
    await flush();

    assert.equal(outcome.error, undefined);
    assert.deepEqual(outcome.value, REPORT);
    assert.equal(calls.length, 0, "no HTTP request besides the stream");
    assert.deepEqual(progress, [
      ["processing", 10, "Reading orders"],
      ["processing", 60, "Summing orders"],
      ["completed", 100, "Done"],
    ]);
    assert.equal(source.closed, true, "closed on the terminal event");
    assert.equal(source.listenerCount(), 0);
    assert.equal(clock.pending(), 0, "the first-event watchdog is cleared");
  });

  test("the global EventSource is used when no option names one", async () => {
    const sse = fakeEventSource();
    globalThis.EventSource = sse.EventSource;
    try {
      const { opts } = start([]);
      const outcome = settle(waitForJob(JOB_URL, opts));
      await flush();
      sse.instances[0].emit("status", job("failed", 10, "", { error: { code: "boom", message: "Boom." } }));
      await flush();
      assert.ok(outcome.error instanceof JobFailedError);
      assert.equal(outcome.error.code, "boom");
    } finally {
      delete globalThis.EventSource;
    }
  });

  test("with a token the long poll is used, since EventSource cannot send it", async () => {
    const sse = fakeEventSource();
    const { clock, calls, opts } = start([], {
      EventSource: sse.EventSource,
      token: "t0k",
      fallback: respond(200, job("completed", 100, "", { result: 1 }), { ETag: '"e1"' }),
    });

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 1);
    assert.equal(sse.instances.length, 0);
    assert.equal(calls[0].url, LONG_POLL_URL);
    assert.equal(calls[0].headers.Authorization, "Bearer t0k");
  });

  test("without EventSource the long poll is used: held requests, asked again at once", async () => {
    const script = [];
    const { clock, calls, progress, opts } = start(script);
    script.push(
      respond(200, job("pending"), { ETag: '"e1"', "Retry-After": "1" }),
      later(clock, 25_000, respond(304, null, { ETag: '"e1"' })),
      later(clock, 3_000, respond(200, job("processing", 60, "Summing orders"), { ETag: '"e2"' })),
      later(clock, 2_000, respond(200, job("completed", 100, "Done", { result: REPORT }), { ETag: '"e3"' })),
    );

    const { value, error } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(error, undefined);
    assert.deepEqual(value, REPORT);
    assert.deepEqual(calls.map((c) => c.url), Array(4).fill(LONG_POLL_URL));
    assert.deepEqual(
      calls.map((c) => c.headers["If-None-Match"]),
      [undefined, '"e1"', '"e1"', '"e2"'],
      "the first request has no ETag to send, so the server answers at once",
    );
    assert.ok(calls.every((c) => c.init.cache === "no-store"));
    assert.deepEqual(clock.fired, [25_000, 3_000, 2_000], "only the server's holds: no sleeps in between");
    assert.deepEqual(progress, [
      ["pending", 0, ""],
      ["processing", 60, "Summing orders"],
      ["completed", 100, "Done"],
    ]);
  });

  test("a server that ignores wait (two quick 304s) gets polled with backoff instead", async () => {
    const { clock, calls, opts } = start(
      [
        respond(200, job("processing", 10), { ETag: '"e1"' }),
        respond(304, null, { ETag: '"e1"' }),
        respond(304, null, { ETag: '"e1"' }),
        respond(304, null, { ETag: '"e1"', "Retry-After": "2" }),
        respond(200, job("completed", 100, "", { result: 7 }), { ETag: '"e2"' }),
      ],
      { random: () => 0 },
    );

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 7);
    assert.deepEqual(calls.map((c) => c.url), [LONG_POLL_URL, LONG_POLL_URL, LONG_POLL_URL, JOB_URL, JOB_URL]);
    assert.deepEqual(calls.slice(3).map((c) => c.headers["If-None-Match"]), ['"e1"', '"e1"']);
    assert.deepEqual(clock.fired, [250, 2000], "a backoff step, then as Retry-After says");
  });

  test("one quick 304 between held ones is not enough to give up the long poll", async () => {
    const script = [];
    const { clock, calls, opts } = start(script);
    script.push(
      respond(200, job("processing", 10), { ETag: '"e1"' }),
      respond(304, null, { ETag: '"e1"' }),
      later(clock, 25_000, respond(304, null, { ETag: '"e1"' })),
      respond(304, null, { ETag: '"e1"' }),
      later(clock, 25_000, respond(200, job("completed", 100, "", { result: 2 }), { ETag: '"e2"' })),
    );

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 2);
    assert.ok(calls.every((c) => c.url === LONG_POLL_URL));
  });

  test("a long poll answered without ETag falls back to polling", async () => {
    const { clock, calls, opts } = start(
      [respond(200, job("pending")), respond(200, job("completed", 100, "", { result: 3 }))],
      { random: () => 0 },
    );

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 3);
    assert.deepEqual(calls.map((c) => c.url), [LONG_POLL_URL, JOB_URL]);
  });

  test("the long poll retries 5xx and 429 like polling, and rejects a 404", async () => {
    const retried = start(
      [
        respond(503, null, { "Retry-After": "2" }),
        respond(429, null, { "Retry-After": "3" }),
        respond(200, job("completed", 100, "", { result: 4 }), { ETag: '"e"' }),
      ],
    );
    const { value } = await drive(waitForJob(JOB_URL, retried.opts), retried.clock);
    assert.equal(value, 4);
    assert.deepEqual(retried.clock.fired, [2000, 3000]);

    const missing = start([respond(404, { detail: "Not found." })]);
    const { error } = await drive(waitForJob(JOB_URL, missing.opts), missing.clock);
    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 404);
    assert.equal(missing.calls.length, 1);
  });

  test("a 404 for a job already seen means it was deleted: a JobDeletedError, long poll or poll", async () => {
    for (const transport of ["longpoll", "poll"]) {
      const { clock, opts } = start(
        [
          respond(200, job("processing", 10), { ETag: '"e1"' }),
          respond(404, { detail: "Not found.", code: "not_found" }),
        ],
        { transport },
      );

      const { error } = await drive(waitForJob(JOB_URL, opts), clock);

      assert.ok(error instanceof JobDeletedError, `${transport}: ${error}`);
      assert.equal(error.code, "job_deleted");
      assert.equal(error.status, 404);
      assert.equal(error.cause?.detail, "Not found.", "the 404 itself is kept as the cause");
    }
  });

  test("transport \"poll\" polls even when EventSource exists", async () => {
    const sse = fakeEventSource();
    const { clock, calls, opts } = start([respond(200, job("completed", 100, "", { result: 5 }))], {
      EventSource: sse.EventSource,
      transport: "poll",
    });

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 5);
    assert.equal(sse.instances.length, 0);
    assert.equal(calls[0].url, JOB_URL);
  });

  test("a bad transport option, or events where they cannot work, is a TypeError", async () => {
    const sse = fakeEventSource();
    const cases = [
      { transport: "websocket" },
      { transport: "events" },
      { transport: "events", EventSource: sse.EventSource, token: "t" },
    ];
    for (const options of cases) {
      const { clock, calls, opts } = start([], options);
      const { error } = await drive(waitForJob(JOB_URL, opts), clock);
      assert.ok(error instanceof TypeError, JSON.stringify(options));
      assert.equal(calls.length, 0);
    }
  });
});

// --- The stream's fallbacks and endings ------------------------------------------------

describe("event stream", () => {
  test("an error before the first event closes it and falls back to the long poll", async () => {
    const sse = fakeEventSource();
    const { calls, opts } = start([respond(404, { detail: "Not found." })], { EventSource: sse.EventSource });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    sse.instances[0].fail(); // a 404 or no server: the browser would keep reconnecting
    await flush();

    assert.equal(sse.instances[0].closed, true);
    assert.equal(calls[0].url, LONG_POLL_URL);
    assert.ok(outcome.error instanceof ApiError, "the long poll shows the real HTTP error");
    assert.equal(outcome.error.status, 404);
  });

  test("no first event within streamOpenTimeoutMs (a buffering proxy) falls back to the long poll", async () => {
    const sse = fakeEventSource();
    const { clock, calls, opts } = start(
      [respond(200, job("completed", 100, "", { result: 8 }), { ETag: '"e"' })],
      { EventSource: sse.EventSource, streamOpenTimeoutMs: 4000 },
    );

    const { value } = await drive(waitForJob(JOB_URL, opts), clock);

    assert.equal(value, 8);
    assert.deepEqual(clock.fired, [4000]);
    assert.equal(sse.instances[0].closed, true);
    assert.equal(calls[0].url, LONG_POLL_URL);
  });

  test("errors after events are left to the browser's reconnection", async () => {
    const sse = fakeEventSource();
    const { calls, progress, opts } = start([], { EventSource: sse.EventSource });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    const [source] = sse.instances;
    source.emit("status", job("processing", 10, "Reading orders"), "a");
    source.fail();
    source.fail();
    source.emit("progress", job("processing", 60, "Summing orders"), "b");
    source.fail();
    source.fail();
    source.emit("status", job("completed", 100, "", { result: 9 }), "c");
    await flush();

    assert.equal(outcome.value, 9);
    assert.equal(sse.instances.length, 1, "the same source reconnected by itself");
    assert.equal(calls.length, 0);
    assert.equal(progress.length, 3);
  });

  test("too many errors in a row, or a source the browser closed, fall back to the long poll", async () => {
    for (const failures of [[{}, {}, {}], [{ closed: true }]]) {
      const sse = fakeEventSource();
      const { calls, opts } = start(
        [respond(200, job("completed", 100, "", { result: 10 }), { ETag: '"e"' })],
        { EventSource: sse.EventSource },
      );

      const outcome = settle(waitForJob(JOB_URL, opts));
      await flush();
      const [source] = sse.instances;
      source.emit("status", job("processing", 10), "a");
      for (const failure of failures) source.fail(failure);
      await flush();

      assert.equal(outcome.value, 10, JSON.stringify(failures));
      assert.equal(source.closed, true);
      assert.equal(calls.length, 1);
      assert.equal(calls[0].headers["If-None-Match"], undefined, "event ids are not ETags");
    }
  });

  test("an abort closes the stream and rejects with the signal's reason", async () => {
    const sse = fakeEventSource();
    const controller = new AbortController();
    const { clock, opts } = start([], { EventSource: sse.EventSource, signal: controller.signal });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    sse.instances[0].emit("status", job("processing", 10));
    const reason = new Error("the user left the page");
    controller.abort(reason);
    await flush();

    assert.equal(outcome.error, reason);
    assert.equal(sse.instances[0].closed, true);
    assert.equal(sse.instances[0].listenerCount(), 0);
    assert.equal(clock.pending(), 0);
  });

  test("timeoutMs closes the stream and rejects with a TimeoutError", async () => {
    const sse = fakeEventSource();
    const { clock, opts } = start([], { EventSource: sse.EventSource, timeoutMs: 30_000 });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    sse.instances[0].emit("status", job("processing", 10));
    await flush();
    assert.equal(clock.pending(), 1, "only the timeout is left once an event arrived");
    clock.fireNext();
    await flush();

    assert.equal(outcome.error?.name, "TimeoutError");
    assert.equal(outcome.error.code, "wait_timeout");
    assert.equal(sse.instances[0].closed, true);
    assert.equal(clock.pending(), 0);
  });

  test("an onProgress that throws rejects the wait and closes the stream", async () => {
    const sse = fakeEventSource();
    const broken = new Error("render failed");
    const { opts } = start([], {
      EventSource: sse.EventSource,
      onProgress: () => {
        throw broken;
      },
    });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    sse.instances[0].emit("status", job("processing", 10));
    await flush();

    assert.equal(outcome.error, broken);
    assert.equal(sse.instances[0].closed, true);
  });

  test("a `deleted` event rejects with a JobDeletedError at once and closes the stream", async () => {
    for (const before of [["status"], []]) {
      const sse = fakeEventSource();
      const { clock, calls, opts } = start([], { EventSource: sse.EventSource });

      const outcome = settle(waitForJob(JOB_URL, opts));
      await flush();
      const [source] = sse.instances;
      // Deleted while watched (after a status event), or already gone when
      // the stream began (the server's first and only event).
      for (const type of before) source.emit(type, job("processing", 10, "Reading orders"), "a");
      source.emit("deleted", "{}");
      await flush();

      const error = outcome.error;
      assert.ok(error instanceof JobDeletedError, `${before}: ${error}`);
      assert.ok(error instanceof ApiError, "still an ApiError, status 404, for callers that check those");
      assert.equal(error.name, "JobDeletedError");
      assert.equal(error.code, "job_deleted");
      assert.equal(error.status, 404);
      assert.equal(error.url, JOB_URL);
      assert.match(error.message, /job was deleted/);
      assert.equal(source.closed, true);
      assert.equal(source.listenerCount(), 0);
      assert.equal(clock.pending(), 0);
      assert.equal(calls.length, 0, "no long poll after the server said it is gone");
    }
  });

  test("submitJob follows the 202's job over the stream", async () => {
    const sse = fakeEventSource();
    const { calls, progress, opts } = start([accepted()], { EventSource: sse.EventSource });

    const outcome = settle(submitJob(`${BASE}/api/purchases/`, {}, opts));
    await flush();
    assert.equal(sse.instances[0].url, EVENTS_URL);
    sse.instances[0].emit("status", job("completed", 100, "Order confirmed", { result: { order_id: 1 } }));
    await flush();

    assert.deepEqual(outcome.value, { order_id: 1 });
    assert.equal(calls.length, 1, "the POST only");
    assert.deepEqual(progress, [
      ["pending", 0, ""],
      ["completed", 100, "Order confirmed"],
    ]);
  });
});

// --- runAsJob ---------------------------------------------------------------------

describe("runAsJob", () => {
  test("an inline answer and a job's result resolve to the same value", async () => {
    const inline = start([respond(200, REPORT)]);
    const direct = await drive(runAsJob(REPORT_URL, { date_from: "2026-10-28" }, inline.opts), inline.clock);

    const queued = start([
      accepted(),
      respond(200, job("completed", 100, "", { result: REPORT, result_status: 200 }), { ETag: '"e1"' }),
    ]);
    const viaJob = await drive(runAsJob(REPORT_URL, { date_from: "2026-10-28" }, queued.opts), queued.clock);

    assert.deepEqual(direct.value, REPORT);
    assert.deepEqual(viaJob.value, direct.value);
    for (const { calls } of [inline, queued]) {
      assert.equal(calls[0].method, "POST");
      assert.equal(calls[0].headers.Prefer, "respond-async");
      assert.equal(calls[0].init.body, JSON.stringify({ date_from: "2026-10-28" }));
    }
    assert.equal(queued.calls[1].url, LONG_POLL_URL);
    assert.equal(queued.calls[1].headers.Prefer, undefined, "the Prefer header is for the POST only");
  });

  test("wait is sent in the Prefer header, in whole seconds", async () => {
    for (const [wait, header] of [[5, "respond-async, wait=5"], [0, "respond-async, wait=0"], [2.6, "respond-async, wait=3"]]) {
      const { clock, calls, opts } = start([respond(200, REPORT)], { wait });
      const { value } = await drive(runAsJob(REPORT_URL, {}, opts), clock);
      assert.deepEqual(value, REPORT);
      assert.equal(calls[0].headers.Prefer, header);
    }
    const { clock, opts } = start([], { wait: -1 });
    const { error } = await drive(runAsJob(REPORT_URL, {}, opts), clock);
    assert.ok(error instanceof TypeError);
  });

  test("follows the job over the stream when EventSource exists", async () => {
    const sse = fakeEventSource();
    const { calls, progress, opts } = start([accepted()], { EventSource: sse.EventSource, wait: 5 });

    const outcome = settle(runAsJob(REPORT_URL, {}, opts));
    await flush();
    const [source] = sse.instances;
    source.emit("status", job("processing", 10, "Reading orders"));
    source.emit("progress", job("processing", 60, "Summing orders"));
    source.emit("status", job("completed", 100, "", { result: REPORT, result_status: 200 }));
    await flush();

    assert.deepEqual(outcome.value, REPORT);
    assert.equal(calls[0].headers.Prefer, "respond-async, wait=5");
    assert.deepEqual(progress.map((p) => p[1]), [0, 10, 60, 100]);
  });

  test("a 400 rejects with the field errors in body, without a job", async () => {
    const errors = { date_from: ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."] };
    const { clock, calls, opts } = start([respond(400, errors)]);

    const { error } = await drive(runAsJob(REPORT_URL, { date_from: "yesterday" }, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "invalid");
    assert.deepEqual(error.body, errors);
    assert.match(error.detail, /^date_from: Date has wrong format/);
    assert.equal(calls.length, 1);
  });

  test("a job whose action answered a 4xx rejects like the inline answer would", async () => {
    const body = { date_to: ["Must not be before date_from."] };
    const { clock, opts } = start([
      accepted(),
      respond(200, job("completed", 100, "", { result: body, result_status: 400 }), { ETag: '"e1"' }),
    ]);

    const { error } = await drive(runAsJob(REPORT_URL, {}, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.deepEqual(error.body, body);
  });

  test("submitJob sends no Prefer header and accepts an inline answer too", async () => {
    const { clock, calls, opts } = start([respond(200, REPORT)]);

    const { value } = await drive(submitJob(REPORT_URL, {}, opts), clock);

    assert.deepEqual(value, REPORT);
    assert.equal(calls[0].headers.Prefer, undefined);
  });
});

describe("job URLs", () => {
  test("the stream and the long poll keep a job URL's own query string", async () => {
    const sse = fakeEventSource();
    const { clock, calls, opts } = start([respond(200, job("completed"), { ETag: '"e"' })], {
      EventSource: sse.EventSource,
      streamOpenTimeoutMs: 10,
    });

    await drive(waitForJob(`${BASE}/api/jobs/j1?tenant=a?b`, opts), clock);

    assert.equal(sse.instances[0].url, `${BASE}/api/jobs/j1/events/?tenant=a?b`);
    assert.equal(calls[0].url, `${BASE}/api/jobs/j1?tenant=a?b&wait=25`);
  });
});
