"""Nothing stays processing for ever, and nothing pending is forgotten.

The reaper runs on a django-q2 schedule. A processing job whose lease ran
out lost its worker (killed, machine gone, killed by django-q2 after its
timeout): it is queued again while attempts remain and failed with
``worker_lost`` otherwise. A pending job whose queue message is old was
probably lost (crash between commit and enqueue, broker restart, a SECRET_KEY
rotation that makes django-q2 drop signed messages): it is sent again. Sending
twice is harmless, because a worker must claim a job before running it.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from jobs import queue
from jobs.webhooks.delivery import send_due
from jobs.conf import jobs_settings
from jobs.models import Job, JobStatus
from jobs.transitions import cancel_lost, fail_lost, lease_expired, recover_lost

logger = logging.getLogger(__name__)

BATCH = 500
# Seconds between django-q2's scheduler look and a scheduled task starting, at most.
SCHEDULER_SLACK = 10


def fail_exhausted(pk: uuid.UUID, *, actor: str, now: datetime | None = None) -> str | None:
    """End a job whose worker was lost on its last attempt; return how, if this call ended it.

    It fails with ``worker_lost`` (or completes, if its kind's hook finds the
    work done); one asked to cancel is cancelled.
    """
    now = now or timezone.now()
    job = Job.objects.filter(pk=pk).only("kind", "cancel_requested").first()
    if job is None:
        return None
    if job.cancel_requested:
        return cancel_lost(pk, kind=job.kind, actor=actor, now=now)
    ended = fail_lost(pk, kind=job.kind, actor=actor, now=now)
    if ended is not None:
        logger.warning("Job %s (%s) ended %s: worker lost on its last attempt", pk, job.kind, ended)
    return ended


def recover_expired_leases(now: datetime | None = None) -> dict[str, int]:
    """Queue again, cancel or fail processing jobs whose lease ran out; count each outcome."""
    now = now or timezone.now()
    outcome: Counter[str] = Counter(requeued=0, failed=0)
    expired = Job.objects.filter(lease_expired(now)).order_by("lease_expires_at")
    for job in expired.only("pk", "kind", "attempts", "max_attempts", "cancel_requested")[:BATCH]:
        if job.cancel_requested:
            # Asked to stop and its worker is gone: running it again would
            # only make it stop at once. It ends cancelled.
            ended = cancel_lost(job.pk, kind=job.kind, actor="reaper", now=now)
        elif job.attempts >= job.max_attempts:
            ended = fail_exhausted(job.pk, actor="reaper", now=now)
        elif recover_lost(job.pk, attempt=job.attempts, now=now):
            queue.enqueue(job.pk, job.kind)
            ended = "requeued"
        else:
            ended = None
        if ended is not None:
            outcome[ended] += 1
    return dict(outcome)


def cancel_orphans(now: datetime | None = None) -> dict[str, int]:
    """End pending jobs asked to cancel (no worker may claim them, so nothing else would); count outcomes."""
    now = now or timezone.now()
    orphans = Job.objects.filter(status=JobStatus.PENDING, cancel_requested=True).values_list("pk", "kind")
    outcome: Counter[str] = Counter()
    for pk, kind in orphans[:BATCH]:
        ended = cancel_lost(pk, kind=kind, actor="reaper", now=now)
        if ended is not None:
            outcome[ended] += 1
    return dict(outcome)


def resend_lost_pending(now: datetime | None = None) -> int:
    """Send again the pending jobs whose queue message is older than LOST_AFTER."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=jobs_settings.LOST_AFTER)
    lost = (
        Job.objects.filter(status=JobStatus.PENDING, cancel_requested=False)
        .filter(Q(enqueued_at__isnull=True, created_at__lt=cutoff) | Q(enqueued_at__lt=cutoff))
        .filter(Q(available_at__isnull=True) | Q(available_at__lte=now))
        .order_by("created_at")
        .values_list("pk", "kind")[:BATCH]
    )
    resent = 0
    for pk, kind in lost:
        try:
            queue.enqueue(pk, kind)
            resent += 1
        except Exception:
            logger.exception("Could not send lost job %s (%s) again", pk, kind)
    return resent


def reap_task() -> dict[str, int]:
    """The scheduled reaper: recover expired leases and lost messages, then book the next run."""
    now = timezone.now()
    outcome = Counter(recover_expired_leases(now))
    outcome.update(cancel_orphans(now))
    outcome["resent"] = resend_lost_pending(now)
    # Webhook retries whose backoff has passed (jobs.webhooks.delivery).
    outcome["webhooks"] = send_due(now)
    # django-q2's scheduler looks at schedules about every 30 s and runs what
    # is due. Booked exactly one interval ahead, the next run would fall just
    # after the scheduler's look and wait for the one after (60 s, not 30):
    # book it early by the slack a run takes to start.
    ahead = max(1.0, jobs_settings.REAPER_INTERVAL - SCHEDULER_SLACK)
    queue.reschedule_reaper(now + timedelta(seconds=ahead))
    if any(outcome.values()):
        logger.info("Reaper: %s", dict(outcome))
    return dict(outcome)
