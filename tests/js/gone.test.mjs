// A removed job (410 Gone, or the stream's `deleted` event with its body) is final:
// node --test tests/js/

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ApiError,
  JobDeletedError,
  JobGoneError,
  cancelJob,
  waitForJob,
} from "../../jobs/static/jobs/client.js";
import { JOB_URL, drive, fakeEventSource, flush, job, respond, settle, setup } from "./fakes.mjs";

const REMOVED_AT = "2026-11-30T17:00:00.123456Z";
const GONE = {
  detail: `This job expired at ${REMOVED_AT}: its time to live passed; its result is gone. Submit the operation again if you still need it.`,
  code: "job_gone",
  id: "j1",
  kind: "purchases.execute",
  removed_at: REMOVED_AT,
  reason: "expired",
};

function assertGone(error, { url = JOB_URL } = {}) {
  assert.ok(error instanceof JobGoneError, String(error));
  assert.ok(error instanceof JobDeletedError, "a JobDeletedError too, for code written for those");
  assert.ok(error instanceof ApiError);
  assert.equal(error.name, "JobGoneError");
  assert.equal(error.status, 410);
  assert.equal(error.code, "job_gone");
  assert.equal(error.reason, "expired");
  assert.equal(error.removedAt.getTime(), Date.parse(REMOVED_AT));
  assert.equal(error.message, GONE.detail);
  assert.equal(error.detail, GONE.detail);
  assert.deepEqual(error.body, GONE);
  assert.equal(error.url, url);
}

describe("a job that is gone", () => {
  test("a 410 while polling or long polling rejects with a JobGoneError and asks no more", async () => {
    for (const transport of ["poll", "longpoll"]) {
      for (const seen of [true, false]) {
        const script = seen ? [respond(200, job("processing", 10), { ETag: '"e1"' })] : [];
        const { clock, calls, opts } = setup([...script, respond(410, GONE)], { transport });

        const { error } = await drive(waitForJob(JOB_URL, opts), clock);

        assertGone(error);
        assert.equal(calls.length, script.length + 1, `${transport}, seen ${seen}: a 410 is not retried`);
        assert.equal(clock.pending(), 0);
      }
    }
  });

  test("a `deleted` event with the 410's body rejects with a JobGoneError; an empty one with a JobDeletedError", async () => {
    for (const [data, gone] of [[GONE, true], ["{}", false], ["not json", false]]) {
      const sse = fakeEventSource();
      const { calls, opts } = setup([], { EventSource: sse.EventSource, transport: "events" });

      const outcome = settle(waitForJob(JOB_URL, opts));
      await flush();
      const [source] = sse.instances;
      source.emit("status", job("processing", 10), "a");
      source.emit("deleted", data);
      await flush();

      if (gone) assertGone(outcome.error);
      else {
        assert.ok(outcome.error instanceof JobDeletedError);
        assert.ok(!(outcome.error instanceof JobGoneError), `${data}: nothing says when`);
        assert.equal(outcome.error.status, 404);
      }
      assert.equal(source.closed, true);
      assert.equal(calls.length, 0, "no long poll after the server said it is gone");
    }
  });

  test("a stream refused before its first event falls back to the long poll, whose 410 is final", async () => {
    const sse = fakeEventSource();
    const { calls, opts } = setup([respond(410, GONE)], { EventSource: sse.EventSource, transport: "events" });

    const outcome = settle(waitForJob(JOB_URL, opts));
    await flush();
    sse.instances[0].fail({ closed: true });
    await flush();

    assert.ok(outcome.done);
    assertGone(outcome.error);
    assert.deepEqual(calls.map((call) => call.url), [`${JOB_URL}?wait=25`]);
  });

  test("cancelling a job that is gone rejects with a JobGoneError", async () => {
    const { clock, calls, opts } = setup([respond(410, GONE)]);
    const { error } = await drive(cancelJob(JOB_URL, opts), clock);
    assertGone(error, { url: null });
    assert.equal(calls.length, 1);
  });

  test("a 410 that is not the API's (a proxy's page) is a plain ApiError", async () => {
    const { clock, opts } = setup([respond(410, { detail: "Gone." })]);
    const { error } = await drive(waitForJob(JOB_URL, opts), clock);
    assert.ok(error instanceof ApiError);
    assert.ok(!(error instanceof JobDeletedError));
    assert.equal(error.status, 410);
  });
});
