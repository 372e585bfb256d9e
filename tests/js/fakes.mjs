// Fakes for the client's tests: a scripted fetch, a clock that owns every timer,
// and an EventSource driven by the test. Not a test file itself (no `.test.`).

export const BASE = "http://shop.test";
export const JOB_URL = `${BASE}/api/jobs/j1/`;
export const START = Date.UTC(2025, 0, 1, 12, 0, 0);

export function fakeClock() {
  let now = START;
  let nextId = 1;
  const timers = new Map();
  const fired = [];
  return {
    now: () => now,
    setTimeout(fn, ms) {
      const id = nextId++;
      timers.set(id, { id, fn, ms, at: now + ms });
      return id;
    },
    clearTimeout(id) {
      timers.delete(id);
    },
    pending: () => timers.size,
    fired,
    fireNext() {
      const next = [...timers.values()].sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!next) return false;
      timers.delete(next.id);
      now = next.at;
      fired.push(next.ms);
      next.fn();
      return true;
    },
  };
}

/** Answers from `script` in order, then from `fallback`; records every call. */
export function fakeFetch(script, fallback = null) {
  const calls = [];
  const fetch = async (url, init = {}) => {
    calls.push({ url: String(url), method: init.method ?? "GET", headers: { ...init.headers }, init });
    const next = script.length ? script.shift() : fallback;
    if (next === null) return respond(418, { detail: `Unexpected request ${init.method} ${url}` });
    const value = typeof next === "function" ? await next(url, init) : next;
    if (value instanceof Error) throw value;
    return value;
  };
  return { fetch, calls };
}

export function respond(status, body = null, headers = {}) {
  const text = body === null ? "" : JSON.stringify(body);
  return { status, ok: status >= 200 && status < 300, headers: new Headers(headers), text: async () => text };
}

export function job(status, percentage = 0, message = "", extra = {}) {
  return {
    id: "j1",
    url: JOB_URL,
    kind: "purchases.execute",
    status,
    progress: { percentage, message },
    result: null,
    error: null,
    cancel_requested: false,
    ...extra,
  };
}

export const flush = async () => {
  for (let i = 0; i < 20; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

/** Let the promise run, firing the next timer whenever it is stuck, until it settles. */
export async function drive(promise, clock, maxSteps = 500) {
  let settled = null;
  promise.then(
    (value) => (settled = { value }),
    (error) => (settled = { error }),
  );
  for (let step = 0; step < maxSteps; step += 1) {
    await flush();
    if (settled) return settled;
    if (!clock.fireNext()) throw new Error("Stuck: the promise is pending and no timer is set");
  }
  throw new Error("Still pending after too many timers");
}

/** Options for a call with fake fetch and clock; plain polling unless `transport` says otherwise. */
export function setup(script, { fallback = null, random = () => 0.5, transport = "poll", ...options } = {}) {
  const clock = fakeClock();
  const net = fakeFetch(script, fallback);
  const progress = [];
  const opts = {
    fetch: net.fetch,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random,
    transport,
    onProgress: (p) => progress.push([p.status, p.percentage, p.message]),
    ...options,
  };
  return { clock, calls: net.calls, progress, opts };
}


/**
 * A fake EventSource class and the list of its instances, newest last.
 *
 * The test plays the server: `emit(type, document)` delivers an event,
 * `fail()` an error while reconnecting, `fail({ closed: true })` an error
 * after which the browser gives up (401, 404, a 204 on reconnect).
 */
export function fakeEventSource() {
  const instances = [];

  class FakeEventSource {
    static CONNECTING = 0;
    static OPEN = 1;
    static CLOSED = 2;

    constructor(url, init) {
      this.url = String(url);
      this.init = init;
      this.readyState = FakeEventSource.CONNECTING;
      this.closed = false;
      this.listeners = new Map();
      instances.push(this);
    }

    addEventListener(type, listener) {
      if (!this.listeners.has(type)) this.listeners.set(type, new Set());
      this.listeners.get(type).add(listener);
    }

    removeEventListener(type, listener) {
      this.listeners.get(type)?.delete(listener);
    }

    close() {
      this.readyState = FakeEventSource.CLOSED;
      this.closed = true;
    }

    /** How many listeners are still attached, over all event types. */
    listenerCount() {
      return [...this.listeners.values()].reduce((sum, set) => sum + set.size, 0);
    }

    emit(type, document, id = "1") {
      if (this.closed) throw new Error("emit on a closed EventSource");
      this.readyState = FakeEventSource.OPEN;
      const data = typeof document === "string" ? document : JSON.stringify(document);
      this.dispatch(type, { type, data, lastEventId: id });
    }

    fail({ closed = false } = {}) {
      this.readyState = closed ? FakeEventSource.CLOSED : FakeEventSource.CONNECTING;
      this.dispatch("error", { type: "error" });
    }

    dispatch(type, event) {
      for (const listener of [...(this.listeners.get(type) ?? [])]) listener(event);
    }
  }

  return { EventSource: FakeEventSource, instances };
}

/** Record how a promise settles, without awaiting it. */
export function settle(promise) {
  const outcome = { done: false, value: undefined, error: undefined };
  promise.then(
    (value) => Object.assign(outcome, { done: true, value }),
    (error) => Object.assign(outcome, { done: true, error }),
  );
  return outcome;
}

/** An answer that arrives `ms` later on the fake clock, like a held long poll. */
export function later(clock, ms, response) {
  return () => new Promise((resolve) => clock.setTimeout(() => resolve(response), ms));
}
