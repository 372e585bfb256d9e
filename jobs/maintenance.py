"""Bulk operations for staff and schedules: retry, cancel, purge, expire.

Large selections are processed in batches of primary keys, each batch in its
own short transaction, so a million-row purge never holds one huge
transaction nor blocks inserts for long.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from jobs import queue
from jobs.conf import jobs_settings
from jobs.models import Job, JobEventType, JobQuerySet, JobStatus, TombstoneReason
from jobs.timeline import event_record_many
from jobs.tombstones import tombstones_purge, tombstones_record
from jobs.transitions import cancel_pending

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
BatchCallback = Callable[[list[uuid.UUID]], None]

RETRYABLE = (JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass
class BulkResult:
    """What a bulk operation did: how many jobs changed, and how many were skipped by status."""

    changed: int = 0
    skipped: Counter = field(default_factory=Counter)

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def pk_batches(queryset: JobQuerySet, size: int) -> Iterator[list[uuid.UUID]]:
    """Yield the queryset's primary keys in ascending batches (keyset pagination)."""
    keys = queryset.order_by("pk").values_list("pk", flat=True)
    last = None
    while True:
        batch = list((keys.filter(pk__gt=last) if last else keys)[:size])
        if not batch:
            return
        yield batch
        last = batch[-1]


# One locked row of a batch: primary key, kind, status.
Row = tuple[uuid.UUID, str, str]


def _locked(ids: list[uuid.UUID]) -> list[Row]:
    return list(
        Job.objects.select_for_update().filter(pk__in=ids).values_list("pk", "kind", "status")
    )


def _in_locked_batches(
    queryset: JobQuerySet,
    *,
    eligible: Collection[str],
    apply: Callable[[list[Row]], None],
    batch_size: int,
) -> BulkResult:
    """Run ``apply`` on the eligible rows of each batch, locked, one transaction a batch.

    Rows are re-read under the lock because a worker may have moved a job on
    since the queryset was built; what is no longer eligible is counted as
    skipped by its status, and a batch with nothing eligible is left alone.
    """
    result = BulkResult()
    for ids in pk_batches(queryset, batch_size):
        with transaction.atomic():
            rows = _locked(ids)
            chosen = [row for row in rows if row[2] in eligible]
            result.skipped.update(status for _, _, status in rows if status not in eligible)
            if chosen:
                apply(chosen)
        result.changed += len(chosen)
    return result


def jobs_bulk_retry(
    queryset: JobQuerySet,
    *,
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchCallback | None = None,
) -> BulkResult:
    """Send failed and cancelled jobs back to pending with fresh attempts, and enqueue them."""

    def send_back(rows: list[Row]) -> None:
        pks = [pk for pk, _, _ in rows]
        Job.objects.filter(pk__in=pks).update(
            status=JobStatus.PENDING,
            attempts=0,
            result=None,
            error=None,
            cancel_requested=False,
            progress_percentage=0,
            progress_message="",
            started_at=None,
            finished_at=None,
            expires_at=None,
            available_at=None,
            updated_at=timezone.now(),
        )
        event_record_many(job_ids=pks, type=JobEventType.RETRIED, actor=actor)
        sends = [(pk, kind) for pk, kind, _ in rows]
        transaction.on_commit(functools.partial(_enqueue_all, sends), robust=True)
        if on_batch:
            on_batch(pks)

    return _in_locked_batches(queryset, eligible=RETRYABLE, apply=send_back, batch_size=batch_size)


def _enqueue_all(batch: list[tuple[uuid.UUID, str]]) -> None:
    # One send failing (broker hiccup, kind no longer registered) must not
    # keep the rest of the batch from being sent.
    for pk, kind in batch:
        try:
            queue.enqueue(pk, kind)
        except Exception:
            logger.exception("Could not enqueue retried job %s (%s)", pk, kind)


def jobs_bulk_cancel(
    queryset: JobQuerySet,
    *,
    actor: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchCallback | None = None,
) -> BulkResult:
    """Cancel pending jobs at once and ask processing ones to stop; finished jobs are skipped.

    The bulk form of ``jobs.services.job_cancel``, for a queryset of any size.

    A pending job may have run before (it waits for a retry): its kind's
    ``on_abandon`` hook settles that run as it is cancelled (see
    ``transitions.abandon``), and may complete it instead.
    """

    def cancel(rows: list[Row]) -> None:
        pending = [(pk, kind) for pk, kind, status in rows if status == JobStatus.PENDING]
        running = [pk for pk, _, status in rows if status == JobStatus.PROCESSING]
        now = timezone.now()
        for pk, kind in pending:
            cancel_pending(pk, kind=kind, actor=actor, now=now)
        Job.objects.filter(pk__in=running).update(cancel_requested=True, updated_at=now)
        event_record_many(job_ids=running, type=JobEventType.CANCEL_REQUESTED, actor=actor)
        if on_batch:
            on_batch([pk for pk, _ in pending] + running)

    return _in_locked_batches(
        queryset, eligible=JobStatus.active(), apply=cancel, batch_size=batch_size
    )


def jobs_bulk_purge(
    queryset: JobQuerySet,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: BatchCallback | None = None,
    reason: str = TombstoneReason.PURGED,
) -> BulkResult:
    """Delete finished jobs, leaving tombstones that say ``reason``; pending and processing ones are skipped."""

    def delete(rows: list[Row]) -> None:
        doomed = [pk for pk, _, _ in rows]
        # Before the delete: the admin's callback logs each job while it still exists.
        if on_batch:
            on_batch(doomed)
        finished = Job.objects.filter(pk__in=doomed, status__in=JobStatus.terminal())
        tombstones_record(finished, reason=reason)
        finished.delete()

    return _in_locked_batches(
        queryset, eligible=JobStatus.terminal(), apply=delete, batch_size=batch_size
    )


def jobs_purge_expired(
    *, now: datetime | None = None, batch_size: int = 1000, on_batch: BatchCallback | None = None
) -> int:
    """Delete finished jobs whose time to live has passed; return how many went."""
    expired = Job.objects.expired(now or timezone.now()).filter(status__in=JobStatus.terminal())
    return jobs_bulk_purge(
        expired, batch_size=batch_size, on_batch=on_batch, reason=TombstoneReason.EXPIRED
    ).changed


def purge_expired_task() -> dict[str, int]:
    """The scheduled TTL task: expired jobs, old tombstones, then django-q2 task records older than the TTL."""
    jobs_deleted = jobs_purge_expired()
    tombstones_deleted = tombstones_purge()
    cutoff = timezone.now() - timedelta(seconds=jobs_settings.DEFAULT_TTL)
    tasks_deleted = queue.prune_task_records(older_than=cutoff)
    logger.info(
        "TTL purge: %s expired jobs, %s tombstones, %s django-q2 task records",
        jobs_deleted,
        tombstones_deleted,
        tasks_deleted,
    )
    return {"jobs": jobs_deleted, "tombstones": tombstones_deleted, "tasks": tasks_deleted}
