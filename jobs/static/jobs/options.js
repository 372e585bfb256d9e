/**
 * The `Job-Options` header: options a client may choose for a job, within the
 * server's bounds (README, "Job options").
 *
 * The header is an RFC 9651 structured-field dictionary; this module writes
 * one from a plain object. The server checks every value (a `400` with code
 * `invalid_job_options` names the bound that was crossed), so the client only
 * refuses what could not be written at all.
 *
 * @module jobs/options
 */

/**
 * @typedef {object} JobOptions
 * @property {number} [timeout] Seconds the job may run (at most the operation's own limit).
 * @property {number} [ttl] Seconds the finished job is kept.
 * @property {number} [priority] Higher runs first within its queue.
 * @property {Date|string} [runAt] Not started before this time (a Date, or RFC 3339 text).
 * @property {string} [callback] An https URL told when the job ends (a signed webhook).
 */

// Each option: its key in the header and how its value is written.
const OPTIONS = {
  timeout: ["timeout", integer],
  ttl: ["ttl", integer],
  priority: ["priority", integer],
  runAt: ["run-at", time],
  callback: ["callback", text],
};

/**
 * The `Job-Options` header value for `options`; null when there are none.
 *
 * @param {JobOptions} options
 * @returns {string|null}
 * @throws {TypeError} For an unknown option or a value that cannot be written.
 */
export function jobOptionsHeader(options) {
  if (options === undefined || options === null) return null;
  if (typeof options !== "object") throw new TypeError("jobOptions must be an object");
  const members = [];
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || value === null) continue;
    const known = OPTIONS[name];
    if (!known) {
      throw new TypeError(`unknown job option ${JSON.stringify(name)}; known: ${Object.keys(OPTIONS).join(", ")}`);
    }
    const [key, write] = known;
    members.push(`${key}=${write(name, value)}`);
  }
  return members.length ? members.join(", ") : null;
}

function integer(name, value) {
  // RFC 9651 integers have at most 15 digits.
  if (!Number.isInteger(value) || Math.abs(value) > 999_999_999_999_999) {
    throw new TypeError(`job option ${name} must be a whole number, not ${value}`);
  }
  return String(value);
}

function time(name, value) {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new TypeError(`job option ${name} is an invalid Date`);
    return text(name, value.toISOString());
  }
  return text(name, value);
}

function text(name, value) {
  // An sf-string holds printable ASCII; backslash and quote are escaped.
  if (typeof value !== "string" || !/^[\x20-\x7e]*$/.test(value)) {
    throw new TypeError(`job option ${name} must be printable ASCII text`);
  }
  return `"${value.replace(/[\\"]/g, (char) => `\\${char}`)}"`;
}
