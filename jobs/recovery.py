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
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone

from jobs import queue
from jobs.conf import jobs_settings
from jobs.models import Job, JobStatus
from jobs.registry import run_abandon_hook, ttl_for
from jobs.transitions import fail_lost, lease_expired, recover_lost

logger = logging.getLogger(__name__)

BATCH = 500


def fail_exhausted(pk: uuid.UUID, *, actor: str, now: datetime | None = None) -> bool:
    """Fail a job whose worker was lost on its last attempt; True if this call failed it."""
    now = now or timezone.now()
    job = Job.objects.filter(pk=pk).only("kind").first()
    if job is None:
        return False
    failed = fail_lost(pk, kind=job.kind, ttl=ttl_for(job.kind), actor=actor, now=now)
    if failed:
        logger.warning("Job %s (%s) failed: worker lost on its last attempt", pk, job.kind)
        run_abandon_hook(job.kind, pk, JobStatus.FAILED)
    return failed


def recover_expired_leases(now: datetime | None = None) -> dict[str, int]:
    """Queue again, or fail, processing jobs whose lease ran out."""
    now = now or timezone.now()
    requeued = failed = 0
    expired = Job.objects.filter(lease_expired(now)).order_by("lease_expires_at")
    for job in expired.only("pk", "kind", "attempts", "max_attempts")[:BATCH]:
        if job.attempts >= job.max_attempts:
            failed += fail_exhausted(job.pk, actor="reaper", now=now)
            continue
        if recover_lost(job.pk, attempt=job.attempts, now=now):
            queue.enqueue(job.pk, job.kind)
            requeued += 1
    return {"requeued": requeued, "failed": failed}


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
    outcome = recover_expired_leases(now)
    outcome["resent"] = resend_lost_pending(now)
    queue.reschedule_reaper(now + timedelta(seconds=jobs_settings.REAPER_INTERVAL))
    if any(outcome.values()):
        logger.info("Reaper: %s", outcome)
    return outcome
