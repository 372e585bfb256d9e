"""Queues, limits, priorities and delayed start: what decides when a pending job may start.

Each kind names an execution queue (``@job(queue=...)``, default
``default``); the ``QUEUE_LIMITS`` setting caps how many jobs of a queue run
at once over every cluster, and ``@job(per_owner_limit=...)`` how many jobs
of a kind one owner has running. A job that may not start yet stays
``pending`` with a progress message saying why. Deliveries (``jobs.delivery``)
skip such jobs and take the others in priority order; the claim
(``jobs.transitions.claim``) checks the limits again under a lock, so two
clusters never both start the last free place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.registry import PRIORITY_MAX, PRIORITY_MIN, JobKind, all_kinds

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Plan:
    """How a new job is scheduled: its priority, start time and first progress message."""

    priority: int
    run_at: datetime | None
    available_at: datetime | None
    message: str


def plan(kind: JobKind, *, owner: Any, priority: int | None, run_at: datetime | None, now: datetime) -> Plan:
    """Check ``priority`` and ``run_at`` for a new job of ``kind``; raise ``ValueError`` if invalid."""
    if priority is None:
        priority = kind.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must be a whole number between {PRIORITY_MIN} and {PRIORITY_MAX}.")
    if run_at is not None and (not isinstance(run_at, datetime) or run_at.tzinfo is None):
        raise ValueError("run_at must be a timezone-aware datetime.")
    delayed = run_at is not None and run_at > now
    message = f"Waiting: starts at {run_at.isoformat()}" if delayed else wait_reason(kind, owner_id=_pk(owner))
    return Plan(priority, run_at, run_at if delayed else None, message)


def _pk(owner: Any) -> Any:
    return getattr(owner, "pk", owner)


def queue_limits() -> dict[str, int]:
    """The ``QUEUE_LIMITS`` setting as {queue: limit}; ``ImproperlyConfigured`` if malformed."""
    limits: dict[str, int] = {}
    for item in jobs_settings.QUEUE_LIMITS:
        name, sep, number = str(item).partition("=")
        if not sep or not name.strip() or not number.strip().isdigit() or int(number) < 1:
            raise ImproperlyConfigured(
                f"JOBS['QUEUE_LIMITS'] items look like 'reports=2' (a queue and a limit of 1 or more), not {item!r}."
            )
        limits[name.strip()] = int(number)
    return limits


def owner_limits() -> dict[str, int]:
    """{kind: per-owner limit} for every registered kind that has one."""
    return {kind.name: kind.per_owner_limit for kind in all_kinds() if kind.per_owner_limit}


def limited_kinds() -> dict[str, str]:
    """{kind: its queue} for every registered kind whose jobs may have to wait for a place."""
    queues = queue_limits()
    return {kind.name: kind.queue for kind in all_kinds() if kind.per_owner_limit or kind.queue in queues}


def is_limited(kind: JobKind) -> bool:
    """True if jobs of ``kind`` may have to wait for a place (queue or owner limit)."""
    return bool(kind.per_owner_limit) or kind.queue in queue_limits()


def wait_reason(kind: JobKind, *, owner_id: Any) -> str:
    """Why a job of ``kind`` for ``owner_id`` could not start now; "" if it could."""
    if not is_limited(kind):
        return ""
    from jobs.models import Job, JobStatus

    running = Job.objects.filter(status=JobStatus.PROCESSING)
    if kind.per_owner_limit and owner_id is not None:
        mine = running.filter(kind=kind.name, owner_id=owner_id).count()
        if mine >= kind.per_owner_limit:
            what = "one" if mine == 1 else str(mine)
            return kind.per_owner_message or f"Waiting: you have {what} of these running already"
    limit = queue_limits().get(kind.queue)
    if limit is not None and running.filter(queue=kind.queue).count() >= limit:
        return f"Waiting: the {kind.queue} queue is busy ({limit} running at most)"
    return ""


# --- The claim of a limited job ---------------------------------------------------

# No limit, as a number the claim statement can compare with.
UNLIMITED = 2**31 - 1

# {start}: the start time. On PostgreSQL the clock when the row is updated,
# after the lock and the counts: a job's started_at is then never before the
# finished_at of the job whose place it took (the limit test reads them).
LIMITED_CLAIM_SQL = """
UPDATE jobs_job
SET status = 'processing', attempts = attempts + 1, started_at = {start}, updated_at = {start},
    lease_expires_at = %(lease)s, worker = %(worker)s, progress_message = ''
WHERE id = %(pk)s AND attempts < max_attempts AND NOT cancel_requested AND (
    (status = 'pending' AND (available_at IS NULL OR available_at <= %(now)s)
     AND (SELECT count(*) FROM jobs_job r
          WHERE r.queue = %(queue)s AND r.status = 'processing') < %(queue_limit)s
     AND (owner_id IS NULL OR (SELECT count(*) FROM jobs_job r
          WHERE r.kind = %(kind)s AND r.owner_id = jobs_job.owner_id AND r.status = 'processing')
          < %(owner_limit)s))
    OR (status = 'processing' AND lease_expires_at < %(now)s))
RETURNING started_at
"""

PARK_SQL = """
UPDATE jobs_job SET enqueued_at = NULL, progress_message = %(message)s
WHERE id = %(pk)s AND status = 'pending' AND NOT cancel_requested AND attempts < max_attempts
"""


def claim_limited(pk: Any, kind: JobKind, *, now: datetime, lease: datetime, worker: str) -> datetime | None:
    """Claim job ``pk`` of a limited ``kind`` if its queue and owner have a free place; return its start time.

    The variant of ``jobs.transitions.claim`` for limited kinds, in the
    caller's transaction. Two clusters must not both take the last place:
    on PostgreSQL an advisory lock per queue, held until the transaction
    ends, orders the claims of a queue, and each claim's count (a statement
    run after the lock is granted) sees the ones before it; SQLite runs the
    one UPDATE under its write lock. A job that must wait is sent back to
    the table (``enqueued_at`` cleared) with a message saying why; the
    delivery takes it again when a place is free.
    """
    from django.db import connection

    from jobs.db import db_time, prepared_cursor
    from jobs.models import Job

    pk = Job._meta.pk.get_db_prep_value(pk, connection)
    params = {
        "pk": pk,
        "now": db_time(now),
        "lease": db_time(lease),
        "worker": worker,
        "queue": kind.queue,
        "kind": kind.name,
        "queue_limit": queue_limits().get(kind.queue, UNLIMITED),
        "owner_limit": kind.per_owner_limit or UNLIMITED,
    }
    postgres = connection.vendor == "postgresql"
    with prepared_cursor() as cursor:
        if postgres:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"jobs.queue:{kind.queue}"])
        cursor.execute(LIMITED_CLAIM_SQL.format(start="clock_timestamp()" if postgres else "%(now)s"), params)
        row = cursor.fetchone()
    if row is not None:
        return row[0] if postgres else now
    owner_id = Job.objects.filter(pk=pk).values_list("owner_id", flat=True).first()
    message = wait_reason(kind, owner_id=owner_id) or "Waiting for a free place"
    with prepared_cursor() as cursor:
        cursor.execute(PARK_SQL, {"pk": pk, "message": message[:255]})
    return None


def limited_kind(name: str) -> JobKind | None:
    """The registered kind ``name`` if its jobs are limited, else None (also for unknown kinds)."""
    from jobs.exceptions import UnknownJobKind
    from jobs.registry import get_kind

    try:
        kind = get_kind(name)
    except UnknownJobKind:
        return None
    return kind if is_limited(kind) else None


def release(kind: JobKind) -> None:
    """A job of the limited ``kind`` stopped running: let the jobs waiting for its place go.

    The job-table brokers deliver them once they look again: PostgreSQL's
    pusher is woken by a NOTIFY; SQLite's looks at every commit. Other
    brokers are sent the waiting jobs of the queue (a claim decides again).
    """
    from django.db import connection

    from jobs import queue
    from jobs.models import Job, JobStatus

    if queue.uses_job_table():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify('jobs_job_ready', '')")
        return
    waiting = Job.objects.filter(status=JobStatus.PENDING, queue=kind.queue, enqueued_at__isnull=True)
    if kind.queue not in queue_limits():
        waiting = waiting.filter(kind=kind.name)
    waiting = (
        waiting
        .exclude(available_at__gt=timezone.now())
        .order_by("-priority", "created_at")
        .values_list("pk", "kind")[: queue_limits().get(kind.queue, kind.per_owner_limit or 1)]
    )
    for pk, name in waiting:
        queue.enqueue(pk, name)
