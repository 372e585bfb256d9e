"""Per-minute history of the job system, kept for the admin dashboard.

Counting a day of finished jobs from the job table on every dashboard
refresh would read every one of them (hundreds of thousands on a busy day),
so a django-q2 schedule (``rollup_task``, every minute) keeps two small
tables instead:

- ``JobMinute``: how many jobs of each kind ended each way in each minute,
  with their wait and run times sorted into histogram buckets. Rows are
  written once a minute has settled (``SETTLE``), recomputed from the job
  table, so running the task twice changes nothing.
- ``QueueSample``: pending, due and processing jobs and the oldest due job's
  age, one row a run, and up to which minute ``JobMinute`` is complete.

Both are pruned after ``KEEP``. The dashboard reads the rows and counts only
the minutes since the last rollup from the job table (``finished_by_minute``
over the partial index on ``finished_at``).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from jobs.models import Job, JobMinute, JobStatus, QueueSample
from jobs.selectors import waiting_since

# Upper bounds, in seconds, of the wait and run time buckets: fine enough
# below a second for quick jobs, up to a day for a backlog.
BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600, 14400, 86400)
# A job that finished at 12:00:59 may commit a moment later: a minute is
# rolled up only once this long has passed since it ended.
SETTLE = timedelta(seconds=30)
KEEP = timedelta(hours=25)
# The first run (or one after a long pause) catches up on at most a day, an
# hour per statement.
CATCH_UP = timedelta(hours=24)
CHUNK = timedelta(hours=1)

WAIT = ExpressionWrapper(F("started_at") - F("created_at"), output_field=DurationField())
RUN = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
STARTED = Q(started_at__isnull=False)


def minute_floor(moment: datetime) -> datetime:
    """Return the start of the minute ``moment`` falls in."""
    return moment.replace(second=0, microsecond=0)


def _bucket_aggregates() -> dict[str, Count]:
    aggregates: dict[str, Count] = {"count": Count("pk"), "timed": Count("pk", filter=STARTED)}
    for i, bound in enumerate(BOUNDS):
        limit = timedelta(seconds=bound)
        aggregates[f"w{i}"] = Count("pk", filter=STARTED & Q(wait__lte=limit))
        aggregates[f"r{i}"] = Count("pk", filter=STARTED & Q(run__lte=limit))
    return aggregates


def finished_by_minute(start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Count the jobs that finished in [start, end) by minute, kind and outcome, with time buckets.

    Each row: ``minute``, ``kind``, ``status``, ``count`` and the cumulative
    ``wait_buckets`` and ``run_buckets`` (one count per bound of ``BOUNDS``,
    then the number of jobs that had started at all).
    """
    rows = (
        Job.objects.filter(finished_at__gte=start, finished_at__lt=end, status__in=JobStatus.terminal())
        .order_by()
        .alias(wait=WAIT, run=RUN)
        .annotate(minute=TruncMinute("finished_at"))
        .values("minute", "kind", "status")
        .annotate(**_bucket_aggregates())
    )
    return [
        {
            "minute": row["minute"],
            "kind": row["kind"],
            "status": row["status"],
            "count": row["count"],
            "wait_buckets": [row[f"w{i}"] for i in range(len(BOUNDS))] + [row["timed"]],
            "run_buckets": [row[f"r{i}"] for i in range(len(BOUNDS))] + [row["timed"]],
        }
        for row in rows
    ]


def active_by_kind(now: datetime) -> dict[str, dict[str, Any]]:
    """Return pending, due, processing and expired-lease counts and the oldest due job's wait start, by kind.

    One pass over the active jobs through ``job_status_created_idx`` (the
    gauges of ``/metrics``, which a scrape reads every 30 s or so).
    """
    due = Q(status=JobStatus.PENDING) & (Q(available_at__isnull=True) | Q(available_at__lte=now))
    rows = (
        Job.objects.filter(status__in=JobStatus.active())
        .order_by()
        .values("kind")
        .annotate(
            pending=Count("pk", filter=Q(status=JobStatus.PENDING)),
            processing=Count("pk", filter=Q(status=JobStatus.PROCESSING)),
            due=Count("pk", filter=due),
            # Waiting since it became pending (submitted or retried), or since its backoff ended.
            waiting_since=Min(waiting_since(), filter=due),
            expired=Count("pk", filter=Q(status=JobStatus.PROCESSING, lease_expires_at__lt=now)),
        )
    )
    return {row.pop("kind"): row for row in rows}


def active_now(now: datetime) -> tuple[dict[str, dict[str, int]], dict[str, Any]]:
    """Return pending and processing counts by kind, and the totals with the due count and oldest due age.

    Index-only where it can be (the dashboard reads this every few seconds):
    the counts through ``job_active_kind_idx``, the jobs not yet due and the
    oldest due one through the pending jobs' indexes; no pass over the
    active rows themselves.
    """
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"pending": 0, "processing": 0})
    counts = (
        Job.objects.filter(status__in=JobStatus.active())
        .order_by()
        # In the index's order: PostgreSQL counts as it reads, without hashing.
        .values_list("status", "kind")
        .annotate(n=Count("*"))
    )
    for status, kind, n in counts:
        by_kind[kind]["pending" if status == JobStatus.PENDING else "processing"] = n
    pending = Job.objects.filter(status=JobStatus.PENDING)
    not_due = pending.filter(available_at__gt=now).count()
    # Waiting since it was submitted, or since its retry became due.
    starts = [
        pending.filter(available_at__isnull=True).order_by("created_at").values_list("created_at", flat=True).first(),
        pending.filter(available_at__lte=now).aggregate(at=Min("available_at"))["at"],
    ]
    waiting = [start for start in starts if start is not None]
    total_pending = sum(row["pending"] for row in by_kind.values())
    totals = {
        "pending": total_pending,
        "due": max(0, total_pending - not_due),
        "processing": sum(row["processing"] for row in by_kind.values()),
        "oldest_pending_seconds": max(0.0, (now - min(waiting)).total_seconds()) if waiting else 0.0,
    }
    return dict(by_kind), totals


def rolled_up_to() -> datetime | None:
    """Return the minute up to which ``JobMinute`` is complete, or None before the first rollup."""
    return QueueSample.objects.order_by("-at").values_list("rolled_up_to", flat=True).first()


def rollup_task(now: datetime | None = None) -> dict[str, int]:
    """The scheduled rollup: store the settled minutes' counts, sample the queue, prune old rows."""
    now = now or timezone.now()
    earliest = minute_floor(now) - CATCH_UP
    start = max(rolled_up_to() or earliest, earliest)
    end = minute_floor(now - SETTLE)
    written = 0
    while start < end:
        stop = min(start + CHUNK, end)
        rows = [JobMinute(**row) for row in finished_by_minute(start, stop)]
        # Recomputed, not added to: a second run over the same minutes is harmless.
        JobMinute.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["minute", "kind", "status"],
            update_fields=["count", "wait_buckets", "run_buckets"],
        )
        written += len(rows)
        start = stop
    QueueSample.objects.create(at=now, rolled_up_to=start, **active_now(now)[1])
    pruned = JobMinute.objects.filter(minute__lt=now - KEEP).delete()[0]
    pruned += QueueSample.objects.filter(at__lt=now - KEEP).delete()[0]
    return {"minutes": written, "pruned": pruned}
