"""The only module that talks to django-q2.

A queue message carries the job id and nothing else: the row is the source
of truth, so a lost message can always be sent again from it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django_q.brokers import get_broker
from django_q.models import Schedule, Task
from django_q.tasks import async_task

from django.utils import timezone

from jobs.registry import get_kind

logger = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"


def enqueue(job_id: uuid.UUID, kind: str) -> str:
    """Send the job to the django-q2 cluster now; return the task id."""
    from jobs.models import Job

    timeout = get_kind(kind).queue_timeout
    task_id = async_task(
        RUNNER, str(job_id), task_name=f"{kind}:{job_id}", group=kind, timeout=timeout
    )
    Job.objects.filter(pk=job_id).update(task_id=task_id or "", enqueued_at=timezone.now())
    logger.info("Enqueued job %s (%s) as task %s", job_id, kind, task_id)
    return task_id


def enqueue_at(job_id: uuid.UUID, kind: str, when: datetime) -> None:
    """Send the job to the cluster at ``when`` (django-q2's scheduler checks every ~30 s)."""
    timeout = get_kind(kind).queue_timeout
    Schedule.objects.create(
        name=f"job-retry:{job_id}:{when.timestamp():.0f}"[:100],
        func=RUNNER,
        args=repr((str(job_id),)),
        kwargs=repr({"q_options": {"timeout": timeout, "task_name": f"{kind}:{job_id}", "group": kind}}),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=when,
    )
    logger.info("Job %s (%s) will be retried at %s", job_id, kind, when.isoformat())


# --- Schedules and housekeeping --------------------------------------------

TTL_SCHEDULE_NAME = "jobs.purge_expired"
TTL_TASK = "jobs.maintenance.purge_expired_task"
REAPER_SCHEDULE_NAME = "jobs.reap"
REAPER_TASK = "jobs.recovery.reap_task"


def ensure_schedules(*, every_minutes: int) -> bool:
    """Create or repair the TTL and reaper schedules; return True if the TTL one was created.

    Runs after every ``migrate``: keyed by name, so they are never duplicated.
    """
    created = ensure_schedule(TTL_SCHEDULE_NAME, TTL_TASK, every_minutes)
    # django-q2 schedules have a one-minute resolution; the reaper moves its
    # own next run closer (see reschedule_reaper).
    ensure_schedule(REAPER_SCHEDULE_NAME, REAPER_TASK, 1)
    return created


def ensure_schedule(name: str, func: str, minutes: int) -> bool:
    """Make exactly one schedule ``name`` run ``func`` every ``minutes``; True if created."""
    schedule = Schedule.objects.filter(name=name).order_by("pk").first()
    if schedule is None:
        Schedule.objects.create(
            name=name, func=func, schedule_type=Schedule.MINUTES, minutes=minutes, repeats=-1
        )
        return True
    if (schedule.func, schedule.schedule_type, schedule.minutes) != (func, Schedule.MINUTES, minutes):
        schedule.func, schedule.schedule_type, schedule.minutes = func, Schedule.MINUTES, minutes
        schedule.save(update_fields=["func", "schedule_type", "minutes"])
    # Remove copies someone made by hand; one schedule is enough.
    Schedule.objects.filter(name=name).exclude(pk=schedule.pk).delete()
    return False


def reschedule_reaper(when: datetime) -> None:
    """Bring the reaper's next run forward to ``when``."""
    Schedule.objects.filter(name=REAPER_SCHEDULE_NAME, next_run__gt=when).update(next_run=when)


def prune_task_records(*, older_than: datetime, batch_size: int = 1000) -> int:
    """Delete django-q2's task records (successes and failures) stopped before ``older_than``."""
    deleted = 0
    while True:
        ids = list(
            Task.objects.filter(stopped__lt=older_than).values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return deleted
        deleted += Task.objects.filter(pk__in=ids).delete()[0]


def queue_depth() -> int | None:
    """Return how many tasks wait in django-q2's broker, or None if it cannot tell."""
    try:
        return get_broker().queue_size()
    except Exception:  # a broker that is down must not break a stats command
        logger.warning("Could not read the django-q2 queue size", exc_info=True)
        return None
