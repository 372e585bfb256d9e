/**
 * The errors the jobs client rejects with, and how an error answer becomes one.
 *
 * @module jobs/errors
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
  /** @param {import("./client.js").JobDocument} job */
  constructor(job) {
    const error = job.error || {};
    super(error.message || `The job ended ${job.status}.`);
    this.name = "JobFailedError";
    this.code = error.code || job.status;
    this.status = job.status;
    this.job = job;
  }
}

/**
 * The job was deleted while it was being waited for: purged by staff, or its
 * time to live passed. An {@link ApiError} (status 404) with its own name and
 * code `job_deleted`; `url` is the job's URL.
 */
export class JobDeletedError extends ApiError {
  /**
   * @param {string} jobUrl
   * @param {{cause?: *}} [options] The 404 that told, when a poll found it gone.
   */
  constructor(jobUrl, { cause } = {}) {
    const detail =
      "The job was deleted before it finished (purged by staff, or its time to live passed); " +
      "its result is gone. Submit it again if it is still needed.";
    super(detail, { status: 404, code: "job_deleted", detail, cause });
    this.name = "JobDeletedError";
    this.url = jobUrl;
  }
}

/**
 * The job was removed (its time to live passed, it was deleted, or staff
 * purged it) and the server says when and why: its `410 Gone`, or the
 * event stream's `deleted` event carrying the same body. Final: asking again
 * will not bring the job back. A {@link JobDeletedError} (so code written for
 * that handles this too) with status 410, code `job_gone`, the server's
 * `detail` as its message, `removedAt` (a Date), `reason` ("expired",
 * "deleted" or "purged") and `url` (the job's URL, when known).
 */
export class JobGoneError extends JobDeletedError {
  /**
   * @param {string|null} jobUrl
   * @param {{detail?: string, removed_at?: string, reason?: string}} body The 410's body.
   * @param {{cause?: *}} [options]
   */
  constructor(jobUrl, body, { cause } = {}) {
    super(jobUrl, { cause });
    this.name = "JobGoneError";
    this.status = 410;
    this.code = "job_gone";
    if (typeof body.detail === "string" && body.detail) {
      this.detail = body.detail;
      this.message = body.detail;
    }
    this.body = body;
    this.reason = body.reason ?? null;
    const removedAt = body.removed_at ? new Date(body.removed_at) : null;
    this.removedAt = removedAt && !Number.isNaN(removedAt.getTime()) ? removedAt : null;
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
 * Build the {@link ApiError} for an error answer's status and (parsed) body.
 *
 * A `{"detail", "code"}` body gives both; DRF field errors are flattened into
 * one readable `detail` ("goods: This field is required.").
 *
 * @param {number} status
 * @param {*} body
 * @returns {ApiError}
 */
export function errorFromBody(status, body) {
  if (status === 410 && body && typeof body === "object" && body.code === "job_gone") {
    return new JobGoneError(null, body);
  }
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
