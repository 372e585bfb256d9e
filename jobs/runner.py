"""Run one job on a django-q2 worker: claim it, call its handler, record the outcome.

Delivery is at least once, execution once: the claim is a single conditional
UPDATE, so a duplicate delivery finds nothing to claim and does nothing.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection, connections
from django.utils import timezone
from django_q.exceptions import TimeoutException as QueueTimeout

from jobs import queue
from jobs.conf import jobs_settings
from jobs.context import JobContext, running
from jobs.exceptions import JobCancelled, JobError, JobTimeout, UnknownJobKind
from jobs.models import Job, JobEventType, JobStatus
from jobs.options import job_timeout, job_ttl
from jobs.recovery import fail_exhausted
from jobs.registry import ActionResponse, get_kind, ttl_for
from jobs.timeline import event_record
from jobs.scheduling import limited_kind, release
from jobs.transitions import CANCELLED_ERROR, abandon, claim, finish, requeue, still_ours, worker_name

__all__ = ["backoff_delay", "claim", "refusal_error", "run_job", "time_limit", "worker_name"]

logger = logging.getLogger(__name__)

GENERIC_FAILURE = {
    "code": "internal_error",
    "message": "The job failed after repeated unexpected errors. Staff can see the details; "
    "you may submit it again.",
}


def run_job(job_id: str, kind: str | None = None) -> str:
    """Claim and run the job ``job_id``; return what happened. Never raises for a job's fault.

    ``kind`` is what the queue message says the job is (messages sent before
    it was added carry only the id).
    """
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        logger.error("Ignoring a task with a malformed job id %r", job_id)
        return "malformed"

    try:
        job = claim(pk, kind)
    except (InterfaceError, OperationalError):
        # The connection died since the last task (say the database
        # restarted): workers skip Django's per-task health check (see
        # skip_health_checks), so try once more on a new connection.
        logger.warning("Database connection lost before claiming job %s; reconnecting", pk)
        connection.close()
        job = claim(pk, kind)
    if job is None:
        # django-q2 re-delivers the task of a worker that died, but counts
        # only attempts whose result it saved: the job's own cap ends a
        # job that kills its worker every time.
        # A job asked to cancel whose worker died ends here too.
        ended = fail_exhausted(pk, actor=f"worker:{worker_name()}")
        if ended is not None:
            return ended
        logger.debug("Job %s was not claimable (done, cancelled, or claimed elsewhere)", pk)
        return "skipped"
    limited = limited_kind(job.kind)
    try:
        return _run(job)
    finally:
        if limited is not None:
            # Its place is free: the jobs waiting for it may go.
            release(limited)


def _run(job: Job) -> str:
    try:
        job_kind = get_kind(job.kind)
    except UnknownJobKind as exc:
        return _finish(job, JobStatus.FAILED, error={"code": exc.code, "message": exc.message})

    ctx = JobContext(
        job_id=job.pk,
        kind=job.kind,
        owner_id=job.owner_id,
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        lease=job_kind.lease,
        call=job.call,
    )
    # The client's Job-Options (jobs.options) may shorten the time limit and set the TTL.
    timeout, ttl = job_timeout(job_kind, job.options), job_ttl(job_kind, job.options)
    try:
        with time_limit(timeout), running(ctx):
            outcome_value = job_kind.handler(ctx, job.payload)
        result, result_status = _split_response(outcome_value)
    except (JobTimeout, QueueTimeout):
        error = {"code": JobTimeout.code, "message": f"The job ran longer than its {timeout} s limit."}
        return _abandon(job, JobStatus.FAILED, error)
    except JobCancelled as exc:
        return _abandon(job, JobStatus.CANCELLED, {"code": exc.code, "message": exc.message})
    except JobError as exc:
        return _finish(job, JobStatus.FAILED, error=exc.as_dict(), ttl=ttl)
    except Exception as exc:
        logger.exception("Job %s (%s) raised on attempt %s", job.pk, job.kind, job.attempts)
        message = f"{type(exc).__name__}: {exc}"
        return _after_unexpected_error(job, ttl, traceback.format_exc(), message)
    if result_status is not None and not 200 <= result_status < 300:
        # The action answered with an error (say a 400 because the data no
        # longer validates): the job failed, and keeps the answer for the client.
        return _finish(
            job,
            JobStatus.FAILED,
            result=result,
            result_status=result_status,
            error=refusal_error(result_status, result),
            ttl=ttl,
        )
    return _finish(job, JobStatus.COMPLETED, result=result, result_status=result_status, ttl=ttl)


def skip_health_checks(**kwargs: Any) -> None:
    """Turn off Django's connection health check in a django-q2 worker (``post_spawn``).

    django-q2 closes obsolete connections before every task, and with
    ``CONN_HEALTH_CHECKS`` the next query is preceded by a ``SELECT 1``: a
    round trip per job. ``run_job`` retries its claim on a dead connection
    instead, which costs nothing while the database is up.
    """
    for conn in connections.all(initialized_only=True):
        conn.settings_dict["CONN_HEALTH_CHECKS"] = False
        conn.health_check_enabled = False
    connection.settings_dict["CONN_HEALTH_CHECKS"] = False
    connection.health_check_enabled = False


def backoff_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based), with jitter."""
    base = float(jobs_settings.RETRY_BACKOFF_BASE)
    ceiling = float(jobs_settings.RETRY_BACKOFF_MAX)
    delay = min(ceiling, base * (2 ** max(0, attempt - 1)))
    # Equal jitter: never less than half the delay, so retries of jobs that
    # failed together spread out instead of stampeding.
    return delay / 2 + random.uniform(0, delay / 2)


def _after_unexpected_error(job: Job, ttl: timedelta, tb: str, message: str) -> str:
    if job.attempts >= job.max_attempts:
        event_record(
            job_id=job.pk,
            type=JobEventType.ATTEMPT_FAILED,
            actor=f"worker:{job.worker}",
            attempt=job.attempts,
            message=message[:2000],
        )
        return _abandon(job, JobStatus.FAILED, GENERIC_FAILURE, extra={"traceback": tb})
    available_at = timezone.now() + timedelta(seconds=backoff_delay(job.attempts))
    if requeue(
        job,
        available_at=available_at,
        traceback_text=tb,
        message=message,
        enqueued_at=queue.retry_enqueued_at(available_at),
    ):
        queue.enqueue_at(job.pk, job.kind, available_at)
        return "retrying"
    # Not retried: a cancel was requested meanwhile (or the job changed hands).
    return _abandon(job, JobStatus.CANCELLED, CANCELLED_ERROR, rows=still_ours(job).filter(cancel_requested=True))


def _abandon(
    job: Job, status: str, error: dict[str, Any], *, rows: Any = None, extra: dict[str, Any] | None = None
) -> str:
    """End this attempt as ``status`` without the handler's answer (see ``transitions.abandon``)."""
    ended = abandon(
        still_ours(job) if rows is None else rows,
        pk=job.pk,
        kind=job.kind,
        status=status,
        error=error,
        actor=f"worker:{job.worker}",
        now=timezone.now(),
        attempt=job.attempts,
        extra=extra,
    )
    if ended is None:
        logger.warning("Job %s changed hands before attempt %s finished", job.pk, job.attempts)
        return "lost"
    return ended


def _finish(
    job: Job,
    status: str,
    *,
    result: Any = None,
    result_status: int | None = None,
    error: dict[str, Any] | None = None,
    traceback_text: str | None = None,
    ttl: timedelta | None = None,
) -> str:
    if ttl is None:
        ttl = ttl_for(job.kind)
    if not finish(
        job,
        status,
        ttl=ttl,
        result=result,
        result_status=result_status,
        error=error,
        traceback_text=traceback_text,
    ):
        logger.warning("Job %s changed hands before attempt %s finished", job.pk, job.attempts)
        return "lost"
    logger.debug("Job %s (%s) %s", job.pk, job.kind, status)
    return status


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise ``JobTimeout`` in the handler after ``seconds``, before django-q2 kills the worker.

    Needs SIGALRM, so only in a process's main thread (django-q2 workers are
    processes); elsewhere, such as a test's threads, the limit is not enforced.
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise JobTimeout(f"The job ran longer than its {seconds} s limit.")

    # django-q2 arms the same timer (SIGALRM) for its own, later, timeout:
    # put it back afterwards with the time it had left.
    outer_left, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            remaining = outer_left - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(remaining, 0.001))


def _split_response(value: Any) -> tuple[Any, int | None]:
    """Return a handler's result as stored, and the HTTP status if it answered like an endpoint."""
    if isinstance(value, ActionResponse):
        return _json_safe(value.body), value.status
    return _json_safe(value), None


def refusal_error(status: int, body: Any) -> dict[str, str]:
    """Describe an action's non-2xx answer as a job error; the body stays in ``result``."""
    code = body.get("code") if isinstance(body, dict) else None
    detail = body.get("detail") if isinstance(body, dict) else None
    return {
        "code": code if isinstance(code, str) and code else f"http_{status}",
        "message": detail
        if isinstance(detail, str) and detail
        else f"The operation was refused (HTTP {status}); `result` holds the details.",
    }


def _json_safe(value: Any) -> Any:
    """Return ``value`` as it will read back from the JSON column."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))
