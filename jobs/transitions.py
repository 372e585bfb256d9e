"""Every change of a job's status, with its timeline event: the state machine in one place.

::

    (new) --create--> pending --claim--> processing --finish--> completed | failed | cancelled
                        ^  |                 +--progress (renews the lease; may stop on a cancel)
                        |  |                 +--requeue (an unexpected error, attempts left)--> pending
                        |  |                 +--recover_lost (lease expired, attempts left)--> pending
                        |  |                 +--fail_lost (lease expired, no attempts left)--> failed
                        |  |                 +--request_cancel--> processing, cancel_requested
                        |  |                 +--cancel_lost (lease expired after a cancel request)--> cancelled
                        |  +--cancel_pending--> cancelled

    Every way of ending a job other than its handler's own answer (cancel,
    timeout, last attempt failed or lost) goes through ``abandon``: the
    kind's ``on_abandon`` hook runs once, with the row locked, and may say
    the work was in fact done: the job then ends completed instead.
                        +--(staff retry, jobs.maintenance)--

Each change is one conditional UPDATE that names the state it expects, so a
change that lost a race (a reaper, a cancel, another attempt) changes
nothing. On PostgreSQL the hot ones (create, claim, finish) are one
statement with their event (a data-modifying CTE): one round trip and one
commit each. Elsewhere, and for the rare ones, the UPDATE and its event are
two statements in one transaction. Bulk changes by staff live in
``jobs.maintenance``; what happens around a change (hooks, queueing) in the
callers: ``jobs.runner``, ``jobs.recovery``, ``jobs.services``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.db import prepared_cursor
from jobs.exceptions import UnknownJobKind
from jobs.models import Job, JobEvent, JobEventType, JobStatus
from jobs.options import ttl_of
from jobs.registry import get_kind, run_abandon_hook
from jobs.scheduling import claim_limited, limited_kind
from jobs.signals import announce_end

_worker_name: tuple[int, str] | None = None


def worker_name() -> str:
    """Identify this process in the job's `worker` field (``host:pid``)."""
    global _worker_name
    pid = os.getpid()
    if _worker_name is None or _worker_name[0] != pid:
        _worker_name = (pid, f"{socket.gethostname()}:{pid}"[:255])
    return _worker_name[1]


def lease_expired(now: datetime) -> Q:
    """Processing jobs whose worker stopped renewing its lease before ``now``."""
    return Q(status=JobStatus.PROCESSING, lease_expires_at__lt=now)


def _lease_for(kind: str) -> timedelta:
    try:
        return get_kind(kind).lease
    except UnknownJobKind:
        return timedelta(seconds=jobs_settings.DEFAULT_TIMEOUT + jobs_settings.LEASE_GRACE)


def _json(value: Any) -> str | None:
    # SQL NULL for None, as Django's JSONField stores it.
    return None if value is None else json.dumps(value, cls=DjangoJSONEncoder)


# --- Create ----------------------------------------------------------------

_insert_sql: str | None = None


def _insert_statement() -> str:
    global _insert_sql
    if _insert_sql is None:
        columns = ", ".join(connection.ops.quote_name(f.column) for f in Job._meta.concrete_fields)
        values = ", ".join(["%s"] * len(Job._meta.concrete_fields))
        _insert_sql = (
            f"WITH job AS (INSERT INTO jobs_job ({columns}) VALUES ({values}) RETURNING id) "
            "INSERT INTO jobs_jobevent (job_id, type, at, attempt, actor, message) "
            "SELECT id, 'created', %s, NULL, %s, '' FROM job"
        )
    return _insert_sql


def create(job: Job, *, actor: str) -> Job:
    """Store the new pending ``job`` with its "created" event; return it.

    Raises ``IntegrityError`` when the owner already used its idempotency key.
    """
    if connection.vendor == "postgresql":
        # The wrapper, not the django.db.connection proxy: each field would
        # look the connection up again through it, thirty times a job.
        db = connections[DEFAULT_DB_ALIAS]
        params = [f.get_db_prep_save(getattr(job, f.attname), db) for f in Job._meta.concrete_fields]
        params += [job.created_at, actor[:255]]
        # One statement is atomic on its own; inside a caller's transaction,
        # a savepoint keeps a duplicate key from spoiling the rest of it.
        with transaction.atomic() if db.in_atomic_block else _nothing():
            with prepared_cursor() as cursor:
                cursor.execute(_insert_statement(), params)
        job._state.adding = False
        job._state.db = db.alias
        return job
    with transaction.atomic():
        job.save(force_insert=True)
        JobEvent.objects.create(job_id=job.pk, type=JobEventType.CREATED, at=job.created_at, actor=actor[:255])
    return job


@contextmanager
def _nothing() -> Iterator[None]:
    yield


# --- Claim -----------------------------------------------------------------

CLAIM_SQL = """
WITH claimed AS (
    UPDATE jobs_job
    SET status = 'processing', attempts = attempts + 1, started_at = %(now)s,
        updated_at = %(now)s, lease_expires_at = %(lease)s, worker = %(worker)s,
        progress_message = CASE WHEN status = 'pending' THEN '' ELSE progress_message END
    WHERE id = %(pk)s AND attempts < max_attempts AND (
        (status = 'pending' AND NOT cancel_requested
         AND (available_at IS NULL OR available_at <= %(now)s))
        OR (status = 'processing' AND NOT cancel_requested AND lease_expires_at < %(now)s))
    RETURNING id, kind, owner_id, payload, call, attempts, max_attempts, options
), event AS (
    INSERT INTO jobs_jobevent (job_id, type, at, attempt, actor, message)
    SELECT id, 'claimed', %(now)s, attempts, %(actor)s, '' FROM claimed
)
SELECT id, kind, owner_id, payload, call, attempts, max_attempts, options FROM claimed
"""


def claim(pk: uuid.UUID, kind: str | None = None) -> Job | None:
    """Take a runnable job for this worker; return it, or None if it is not ours to run.

    Runnable: pending and due, or processing with an expired lease (its
    worker died), with attempts left. ``kind``, when the queue message
    carries it, spares reading the row first (the lease depends on it).
    """
    if kind is None:
        kind = Job.objects.filter(pk=pk).values_list("kind", flat=True).first()
        if kind is None:
            return None
    now = timezone.now()
    worker = worker_name()
    lease = now + _lease_for(kind)
    limited = limited_kind(kind)
    if limited is not None:
        # A place in its queue (and among its owner's jobs) is checked under a lock.
        with transaction.atomic():
            started = claim_limited(pk, limited, now=now, lease=lease, worker=worker)
            if started is None:
                return None
            job = Job.objects.get(pk=pk)
            JobEvent.objects.create(
                job_id=pk, type=JobEventType.CLAIMED, at=started, attempt=job.attempts, actor=f"worker:{worker}"
            )
        return job
    if connection.vendor == "postgresql":
        params = {"pk": pk, "now": now, "lease": lease, "worker": worker, "actor": f"worker:{worker}"}
        with prepared_cursor() as cursor:
            cursor.execute(CLAIM_SQL, params)
            row = cursor.fetchone()
        if row is None:
            return None
        job_id, kind, owner_id, payload, call, attempts, max_attempts, options = row
        return Job(
            id=job_id,
            kind=kind,
            owner_id=owner_id,
            payload=json.loads(payload) if isinstance(payload, str) else payload,
            call=json.loads(call) if isinstance(call, str) else call,
            options=json.loads(options) if isinstance(options, str) else options,
            attempts=attempts,
            max_attempts=max_attempts,
            status=JobStatus.PROCESSING,
            started_at=now,
            worker=worker,
        )
    due = Q(status=JobStatus.PENDING, cancel_requested=False) & (
        Q(available_at__isnull=True) | Q(available_at__lte=now)
    )
    with transaction.atomic():
        claimed = (
            Job.objects.filter(pk=pk)
            .filter(due | (lease_expired(now) & Q(cancel_requested=False)))
            .filter(attempts__lt=F("max_attempts"))
            .update(
                status=JobStatus.PROCESSING,
                attempts=F("attempts") + 1,
                started_at=now,
                updated_at=now,
                lease_expires_at=lease,
                worker=worker,
                # What a pending job said while it waited ("Waiting: starts at ...",
                # a retry's) no longer holds once it runs.
                progress_message=Case(When(status=JobStatus.PENDING, then=Value("")), default=F("progress_message")),
            )
        )
        if not claimed:
            return None
        job = Job.objects.get(pk=pk)
        JobEvent.objects.create(
            job_id=pk, type=JobEventType.CLAIMED, at=now, attempt=job.attempts, actor=f"worker:{worker}"
        )
    return job


# --- Finish ----------------------------------------------------------------

FINISH_SQL = """
WITH finished AS (
    UPDATE jobs_job
    SET status = %(status)s, result = %(result)s::jsonb, result_status = %(result_status)s,
        error = %(error)s::jsonb, finished_at = %(now)s, updated_at = %(now)s,
        expires_at = %(expires)s, lease_expires_at = NULL,
        progress_percentage = CASE WHEN %(completed)s THEN 100 ELSE progress_percentage END,
        traceback = COALESCE(%(traceback)s, traceback)
    WHERE id = %(pk)s AND status = 'processing' AND attempts = %(attempt)s
    RETURNING id, options, owner_id
), event AS (
    INSERT INTO jobs_jobevent (job_id, type, at, attempt, actor, message)
    SELECT id, %(status)s, %(now)s, %(attempt)s, %(actor)s, %(message)s FROM finished
)
SELECT count(*),
       -- Whether the job has a webhook destination: answered here, the
       -- ending costs no query of its own for the many jobs that have none.
       COALESCE(bool_or(
           (finished.options ? 'callback')
           OR EXISTS (SELECT 1 FROM jobs_webhookendpoint endpoint
                      WHERE endpoint.owner_id = finished.owner_id AND endpoint.url <> '')
       ), false)
FROM finished
"""


def finish(
    job: Job,
    status: str,
    *,
    ttl: timedelta,
    result: Any = None,
    result_status: int | None = None,
    error: dict[str, Any] | None = None,
    traceback_text: str | None = None,
) -> bool:
    """End this attempt of ``job`` with ``status``; False if the job is no longer ours.

    Someone else (a reaper, a newer attempt) may own the row by now: then
    their word stands and this outcome is dropped.
    """
    now = timezone.now()
    actor = f"worker:{job.worker}"
    message = f"{error['code']}: {error['message']}" if error else ""
    if connection.vendor == "postgresql":
        params = {
            "pk": job.pk,
            "attempt": job.attempts,
            "status": status,
            "result": _json(result),
            "result_status": result_status,
            "error": _json(error),
            "now": now,
            "expires": now + ttl,
            "completed": status == JobStatus.COMPLETED,
            "traceback": traceback_text,
            "actor": actor,
            "message": message,
        }
        with prepared_cursor() as cursor:
            cursor.execute(FINISH_SQL, params)
            count, has_webhooks = cursor.fetchone()
        if count:
            announce_end(job_id=job.pk, kind=job.kind, status=status, webhooks=has_webhooks)
        return bool(count)
    fields: dict[str, Any] = {
        "status": status,
        "result": result,
        "result_status": result_status,
        "error": error,
        "finished_at": now,
        "updated_at": now,
        "expires_at": now + ttl,
        "lease_expires_at": None,
    }
    if status == JobStatus.COMPLETED:
        fields["progress_percentage"] = 100
    if traceback_text is not None:
        fields["traceback"] = traceback_text
    with transaction.atomic():
        if not still_ours(job).update(**fields):
            return False
        JobEvent.objects.create(
            job_id=job.pk, type=status, at=now, attempt=job.attempts, actor=actor, message=message
        )
    announce_end(job_id=job.pk, kind=job.kind, status=status)
    return True


def requeue(job: Job, *, available_at: datetime, traceback_text: str, message: str, enqueued_at: Any) -> bool:
    """Send this attempt's job back to pending until ``available_at``; False if no longer ours.

    Records the failed attempt on the timeline in the same transaction.
    """
    now = timezone.now()
    with transaction.atomic():
        # A job asked to cancel is not retried: the caller cancels it (abandon).
        requeued = still_ours(job).filter(cancel_requested=False).update(
            status=JobStatus.PENDING,
            traceback=traceback_text,
            available_at=available_at,
            enqueued_at=enqueued_at,
            lease_expires_at=None,
            updated_at=now,
            progress_message=f"Attempt {job.attempts} of {job.max_attempts} failed; retrying"[:255],
        )
        if not requeued:
            return False
        JobEvent.objects.create(
            job_id=job.pk,
            type=JobEventType.ATTEMPT_FAILED,
            at=now,
            attempt=job.attempts,
            actor=f"worker:{job.worker}",
            message=message[:2000],
        )
    return bool(requeued)


def still_ours(job: Job):
    """The job's row, as long as this attempt still owns it."""
    return Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING, attempts=job.attempts)


# --- Progress --------------------------------------------------------------


def report_progress(
    job_id: uuid.UUID, *, percentage: int, message: str, lease: timedelta | None, cancellable: bool
) -> bool:
    """Record a processing job's progress (and renew its lease); False if it was not recorded.

    Not recorded: the job is no longer processing, or (``cancellable``) a
    cancel was requested.
    """
    rows = Job.objects.filter(pk=job_id, status=JobStatus.PROCESSING)
    if cancellable:
        rows = rows.filter(cancel_requested=False)
    now = timezone.now()
    fields: dict[str, Any] = {
        "progress_percentage": percentage,
        "progress_message": message[:255],
        "updated_at": now,
    }
    if lease is not None:
        # Reporting progress proves the worker is alive.
        fields["lease_expires_at"] = now + lease
    return bool(rows.update(**fields))


# --- Cancel ----------------------------------------------------------------

CANCELLED_ERROR = {"code": "cancelled", "message": "The job was cancelled."}


def cancel_pending(pk: uuid.UUID, *, kind: str, actor: str, now: datetime | None = None) -> str | None:
    """Cancel the job ``pk`` if it is pending; return how it ended (see ``abandon``), or None.

    A pending job may have run before (it waits for a retry), so its kind's
    ``on_abandon`` hook settles that run.
    """
    return abandon(
        Job.objects.filter(pk=pk, status=JobStatus.PENDING),
        pk=pk,
        kind=kind,
        status=JobStatus.CANCELLED,
        error=CANCELLED_ERROR,
        actor=actor,
        now=now or timezone.now(),
        extra={"cancel_requested": True},
    )


def request_cancel(job: Job, *, actor: str) -> bool:
    """Ask ``job`` to stop at its next progress report if it is processing; True if asked."""
    now = timezone.now()
    with transaction.atomic():
        done = Job.objects.filter(pk=job.pk, status=JobStatus.PROCESSING).update(
            cancel_requested=True, updated_at=now
        )
        if done:
            JobEvent.objects.create(job_id=job.pk, type=JobEventType.CANCEL_REQUESTED, at=now, actor=actor[:255])
    return bool(done)


# --- A lost worker -----------------------------------------------------------

WORKER_LOST = {
    "code": "worker_lost",
    "message": "The worker running this job stopped before it finished, on every attempt. "
    "You may submit it again.",
}


def fail_lost(pk: uuid.UUID, *, kind: str, actor: str, now: datetime) -> str | None:
    """End a job whose worker was lost on its last attempt; return how it ended, or None.

    It is processing with an expired lease, or pending again (redelivered)
    with no attempts left. It fails with ``worker_lost``, unless its hook
    finds the work done (then it completes).
    """
    return _end_lost(pk, kind=kind, actor=actor, now=now, cancelled=False)


def cancel_lost(pk: uuid.UUID, *, kind: str, actor: str, now: datetime) -> str | None:
    """Cancel a job asked to cancel whose worker is gone; return how it ended, or None.

    It is processing with an expired lease, or pending (sent back by an
    earlier version, or by a retry that raced the cancel): nobody may claim
    it any more, so only this ends it.
    """
    return _end_lost(pk, kind=kind, actor=actor, now=now, cancelled=True)


def _end_lost(pk: uuid.UUID, *, kind: str, actor: str, now: datetime, cancelled: bool) -> str | None:
    rows = Job.objects.filter(pk=pk, cancel_requested=cancelled).filter(
        lease_expired(now) | Q(status=JobStatus.PENDING)
    )
    if cancelled:
        status, error, message = JobStatus.CANCELLED, CANCELLED_ERROR, "the worker stopped after the cancel request"
    else:
        rows = rows.filter(attempts__gte=F("max_attempts"))
        status, error, message = JobStatus.FAILED, WORKER_LOST, "the lease expired on the last attempt"
    return abandon(
        rows, pk=pk, kind=kind, status=status, error=error, actor=actor, now=now,
        message=f"{error['code']}: {message}",
    )  # fmt: skip


def recover_lost(pk: uuid.UUID, *, attempt: int, now: datetime) -> bool:
    """Put a processing job whose lease expired on ``attempt`` back to pending; True if done."""
    with transaction.atomic():
        moved = Job.objects.filter(lease_expired(now), pk=pk, attempts=attempt, cancel_requested=False).update(
            status=JobStatus.PENDING,
            available_at=None,
            lease_expires_at=None,
            updated_at=now,
            progress_message="The worker was lost; queued again",
        )
        if moved:
            JobEvent.objects.create(
                job_id=pk,
                type=JobEventType.ATTEMPT_FAILED,
                at=now,
                actor="reaper",
                attempt=attempt,
                message="worker_lost: the lease expired; queued again",
            )
    return bool(moved)



# --- Ending a job without its handler's answer ---------------------------------


def abandon(
    rows: Any,
    *,
    pk: uuid.UUID,
    kind: str,
    status: str,
    error: dict[str, Any],
    actor: str,
    now: datetime,
    message: str = "",
    attempt: int | None = None,
    extra: dict[str, Any] | None = None,
) -> str | None:
    """End the job ``pk`` as ``status`` if ``rows`` (its row in the state expected) still holds it.

    Returns how it ended: ``status``; ``completed`` when the kind's
    ``on_abandon`` hook found the work done (``jobs.Completed``); None when
    the row was no longer in the expected state (someone else ended it, and
    their hook ran). The hook runs in the same transaction, with the row
    locked, so it runs once per job and its changes land with the outcome.
    """
    with transaction.atomic():
        # The job's options (never NULL) come with the lock: its own TTL, if the client chose one.
        options = rows.select_for_update().values_list("options", flat=True).first()
        if options is None:
            return None
        decision = run_abandon_hook(kind, pk, status)
        fields: dict[str, Any] = {
            "finished_at": now,
            "updated_at": now,
            "expires_at": now + ttl_of(kind, options),
            "lease_expires_at": None,
        }
        if decision is not None:
            ended = JobStatus.COMPLETED
            fields.update(status=ended, result=decision.result, error=None, progress_percentage=100)
            message = "completed: the on_abandon hook found the work done" + (f" ({message})" if message else "")
        else:
            ended = status
            fields.update(status=status, error=error, **(extra or {}))
            message = message or f"{error['code']}: {error['message']}"
        if not rows.update(**fields):
            return None
        JobEvent.objects.create(
            job_id=pk, type=ended, at=now, attempt=attempt, actor=actor[:255], message=message[:2000]
        )
    announce_end(job_id=pk, kind=kind, status=ended)
    return ended

