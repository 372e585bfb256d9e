"""The only module that talks to django-q2.

A queue message carries the job id and nothing else: the row is the source
of truth, so a lost message can always be sent again from it.
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import datetime
from typing import Any

from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.models import Schedule, Task
from django_q.signing import SignedPackage
from django_q.status import Stat
from django_q.tasks import async_task

from django.conf import settings
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.exceptions import UnknownJobKind
from jobs.registry import get_kind

logger = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"
JOB_TABLE_BROKER = "jobs.broker.JobTableBroker"
SQLITE_BROKER = "jobs.sqlite_broker.SqliteWakeBroker"


def uses_job_table() -> bool:
    """True when the job table is the queue: ``jobs.broker.JobTableBroker`` (PostgreSQL) or
    ``jobs.sqlite_broker.SqliteWakeBroker`` (SQLite), which deliver jobs by priority, when due,
    within the queues' limits (``jobs.delivery``)."""
    return getattr(settings, "Q_CLUSTER", {}).get("broker_class") in (JOB_TABLE_BROKER, SQLITE_BROKER)


_broker: tuple[int, Broker] | None = None


def _process_broker() -> Broker:
    # django-q2 makes a new broker for every async_task unless given one; with
    # Redis that is a new connection pool, so a new TCP connection per job.
    # One per process (a forked child makes its own) keeps the connection.
    global _broker
    if _broker is None or _broker[0] != os.getpid():
        _broker = (os.getpid(), get_broker())
    return _broker[1]


def enqueue(job_id: uuid.UUID, kind: str, *, new: bool = False) -> str:
    """Make sure a cluster runs the pending job ``job_id``; return the task id, if any.

    ``new``: the job was just created, and its row already says when it was
    enqueued (``job_submit`` sets it), so nothing is written back.
    With the job table as the queue, a pending job is its own message: this
    only marks it undelivered (a trigger wakes the clusters), and nothing at
    all for a new job.
    """
    from jobs.models import Job, JobStatus

    if uses_job_table():
        if not new:
            Job.objects.filter(pk=job_id, status=JobStatus.PENDING).update(enqueued_at=None)
        return ""
    if Conf.SYNC:
        # django-q2's synchronous mode (no cluster): it runs the task here.
        task_id = async_task(
            RUNNER, str(job_id), kind, task_name=f"{kind}:{job_id}", group=kind, timeout=queue_timeout(kind), save=False
        )
    else:
        # The same package async_task would make, without what a job's does
        # not need on its way to a worker (a human-readable id, a translated
        # log line, a signal nothing listens to).
        task = job_task(job_id, kind, timezone.now())
        _process_broker().enqueue(SignedPackage.dumps(task))
        task_id = task["id"]
    if not new:
        Job.objects.filter(pk=job_id).update(task_id=task_id or "", enqueued_at=timezone.now())
    logger.debug("Enqueued job %s (%s) as task %s", job_id, kind, task_id)
    return task_id


def job_task(pk: uuid.UUID, kind: str, now: datetime) -> dict[str, Any]:
    """The django-q2 task that runs job ``pk``: it carries the id and kind only."""
    # The function itself, not its dotted name: a worker then finds it as it
    # unpickles the task, instead of looking the name up for every task.
    from jobs.runner import run_job

    return {
        "id": uuid.uuid4().hex,
        "name": f"{kind}:{pk}",
        "func": run_job,
        "args": (str(pk), kind),
        "kwargs": {},
        "group": kind,
        # An unknown kind gets the default time: the runner fails it with a clear error.
        "timeout": queue_timeout(kind),
        "started": now,
        # The job row keeps the outcome; django-q2 keeps only failures of the
        # runner itself (a bug), which it always saves.
        "save": False,
        "ack_failure": True,
    }


def job_package(pk: uuid.UUID, kind: str, now: datetime) -> str:
    """The signed django-q2 package of ``job_task``, as a broker carries it."""
    return SignedPackage.dumps(job_task(pk, kind, now))


def queue_timeout(kind: str) -> int:
    """Seconds django-q2 lets a task of ``kind`` run; the default for a kind no longer registered.

    A job of an unknown kind must still reach a worker, which fails it with
    ``unknown_kind``: refusing to send it would leave it pending for ever.
    """
    try:
        return get_kind(kind).queue_timeout
    except UnknownJobKind:
        return jobs_settings.DEFAULT_TIMEOUT + jobs_settings.KILL_MARGIN


def initial_enqueued_at(now: datetime) -> datetime | None:
    """``enqueued_at`` for a job created at ``now``: sent on commit, or waiting in the table."""
    return None if uses_job_table() else now


def retry_enqueued_at(available_at: datetime) -> datetime | None:
    """``enqueued_at`` for a job retried at ``available_at``."""
    return None if uses_job_table() else available_at


def enqueue_at(job_id: uuid.UUID, kind: str, when: datetime) -> None:
    """Send the job to the cluster at ``when`` (django-q2's scheduler checks every ~30 s).

    With the job table as the queue, the job's ``available_at`` is enough:
    the cluster takes it once due (PostgreSQL: on time; SQLite: within
    ``Q_CLUSTER["poll"]`` seconds).
    """
    if uses_job_table():
        return
    timeout = queue_timeout(kind)
    Schedule.objects.create(
        name=f"job-retry:{job_id}:{when.timestamp():.0f}"[:100],
        func=RUNNER,
        args=repr((str(job_id), kind)),
        kwargs=repr(
            {"q_options": {"timeout": timeout, "task_name": f"{kind}:{job_id}", "group": kind, "save": False}}
        ),
        schedule_type=Schedule.ONCE,
        repeats=-1,
        next_run=when,
    )
    logger.info("Job %s (%s) will be retried at %s", job_id, kind, when.isoformat())


WEBHOOK_TASK = "jobs.webhooks.delivery.deliver_task"


def send_webhook(delivery_id: uuid.UUID) -> str:
    """Have a cluster make the next attempt of a webhook delivery; return the task id."""
    return async_task(
        WEBHOOK_TASK,
        str(delivery_id),
        task_name=f"webhook:{delivery_id}",
        group="jobs.webhooks",
        # Three connection attempts of WEBHOOK_TIMEOUT at most, and a margin.
        timeout=int(jobs_settings.WEBHOOK_TIMEOUT * 3) + 10,
        save=False,
        broker=_process_broker(),
    )


# --- Schedules and housekeeping --------------------------------------------

TTL_SCHEDULE_NAME = "jobs.purge_expired"
TTL_TASK = "jobs.maintenance.purge_expired_task"
REAPER_SCHEDULE_NAME = "jobs.reap"
REAPER_TASK = "jobs.recovery.reap_task"
ROLLUP_SCHEDULE_NAME = "jobs.rollup"
ROLLUP_TASK = "jobs.rollups.rollup_task"


def ensure_schedules(*, every_minutes: int) -> bool:
    """Create or repair the TTL and reaper schedules; return True if the TTL one was created.

    Runs after every ``migrate``: keyed by name, so they are never duplicated.
    """
    created = ensure_schedule(TTL_SCHEDULE_NAME, TTL_TASK, every_minutes)
    # django-q2 schedules have a one-minute resolution; the reaper moves its
    # own next run closer (see reschedule_reaper).
    ensure_schedule(REAPER_SCHEDULE_NAME, REAPER_TASK, 1)
    # The admin dashboard's per-minute history (jobs/rollups.py).
    ensure_schedule(ROLLUP_SCHEDULE_NAME, ROLLUP_TASK, 1)
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


def cluster_stats() -> list[Any]:
    """Return django-q2's status of each cluster alive now (``Stat``), or [] if it cannot tell.

    Every cluster saves its status in the broker's cache each guard cycle
    (half a second), kept for 3 seconds: a cluster that stopped or died
    drops out within that. The cache must be one every process shares
    (``Q_CLUSTER["cache"]``; see the settings).
    """
    try:
        return Stat.get_all(broker=_process_broker())
    except Exception:  # a broker that is down must not break the dashboard
        logger.warning("Could not read django-q2's cluster status", exc_info=True)
        return []
