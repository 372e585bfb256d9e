// Unit tests of the Job-Options header (jobs/static/jobs/options.js) and the
// client's `jobOptions` option: node --test tests/js/

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ApiError, jobOptionsHeader, runAsJob, submitJob } from "../../jobs/static/jobs/client.js";
import { BASE, drive, job, respond, setup } from "./fakes.mjs";

const accepted = (doc) => respond(202, doc, { Location: "/api/jobs/j1/", "Retry-After": "1", ETag: '"e0"' });

describe("jobOptionsHeader", () => {
  test("writes the issue's example as an RFC 9651 dictionary", () => {
    const header = jobOptionsHeader({
      timeout: 30,
      ttl: 3600,
      priority: 10,
      runAt: "2026-12-01T09:00:00Z",
      callback: "https://example.com/hooks/jobs",
    });
    assert.equal(
      header,
      'timeout=30, ttl=3600, priority=10, run-at="2026-12-01T09:00:00Z", callback="https://example.com/hooks/jobs"',
    );
  });

  test("writes a Date as RFC 3339 in UTC and escapes quotes and backslashes", () => {
    assert.equal(jobOptionsHeader({ runAt: new Date(Date.UTC(2026, 11, 1, 9)) }), 'run-at="2026-12-01T09:00:00.000Z"');
    assert.equal(jobOptionsHeader({ callback: 'https://x.test/a"b\\c' }), 'callback="https://x.test/a\\"b\\\\c"');
    assert.equal(jobOptionsHeader({ priority: -5 }), "priority=-5");
  });

  test("has nothing to say without options", () => {
    assert.equal(jobOptionsHeader(undefined), null);
    assert.equal(jobOptionsHeader({}), null);
    assert.equal(jobOptionsHeader({ ttl: undefined, priority: null }), null);
  });

  test("refuses what it cannot write", () => {
    assert.throws(() => jobOptionsHeader({ colour: "blue" }), /unknown job option "colour"; known: timeout, ttl/);
    assert.throws(() => jobOptionsHeader({ ttl: 1.5 }), /ttl must be a whole number/);
    assert.throws(() => jobOptionsHeader({ ttl: "60" }), /ttl must be a whole number/);
    assert.throws(() => jobOptionsHeader({ timeout: 1e16 }), /whole number/);
    assert.throws(() => jobOptionsHeader({ callback: "https://ü.test/" }), /printable ASCII/);
    assert.throws(() => jobOptionsHeader({ runAt: new Date("nonsense") }), /invalid Date/);
    assert.throws(() => jobOptionsHeader("ttl=60"), /must be an object/);
  });
});

describe("jobOptions on submissions", () => {
  test("submitJob sends them as Job-Options", async () => {
    const done = job("completed", 100, "", { result: { order_id: 7 }, options: { ttl: 3600 } });
    const { clock, calls, opts } = setup([accepted(job("pending")), respond(200, done, { ETag: '"e1"' })], {
      jobOptions: { ttl: 3600, timeout: 30 },
    });

    const { value, error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.equal(error, undefined);
    assert.deepEqual(value, { order_id: 7 });
    assert.equal(calls[0].headers["Job-Options"], "ttl=3600, timeout=30");
    assert.equal(calls[1].headers["Job-Options"], undefined, "only the submission carries them");
  });

  test("runAsJob sends them beside Prefer", async () => {
    const { clock, calls, opts } = setup([accepted(job("pending")), respond(200, job("completed"), {})], {
      jobOptions: { priority: 3, runAt: "2026-12-01T09:00:00Z" },
    });

    await drive(runAsJob(`${BASE}/api/reports/sales/`, {}, opts), clock);

    assert.equal(calls[0].headers.Prefer, "respond-async");
    assert.equal(calls[0].headers["Job-Options"], 'priority=3, run-at="2026-12-01T09:00:00Z"');
  });

  test("a value out of the server's bounds rejects with its 400", async () => {
    const refusal = { detail: "Job-Options: ttl must be a whole number of seconds from 60 to 604800.", code: "invalid_job_options" };
    const { clock, calls, opts } = setup([respond(400, refusal)], { jobOptions: { ttl: 5 } });

    const { error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.ok(error instanceof ApiError);
    assert.equal(error.status, 400);
    assert.equal(error.code, "invalid_job_options");
    assert.match(error.detail, /from 60 to 604800/);
    assert.equal(calls.length, 1);
  });

  test("an option it cannot write rejects before any request", async () => {
    const { clock, calls, opts } = setup([], { jobOptions: { colour: "blue" } });

    const { error } = await drive(submitJob(`${BASE}/api/purchases/`, {}, opts), clock);

    assert.ok(error instanceof TypeError);
    assert.equal(calls.length, 0);
  });
});
