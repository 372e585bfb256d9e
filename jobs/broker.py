"""A django-q2 broker whose queue is the job table itself (PostgreSQL).

The ``Job`` row is the source of truth, so it can be the queue too: a pending
job that no cluster has taken is a message waiting, and there is no second
copy to lose. The cluster's pusher takes pending, due jobs with
``FOR UPDATE SKIP LOCKED`` (several clusters never take the same job), by
priority and age and within the queues' limits (``jobs.delivery``), and
stamps ``enqueued_at``; a worker then claims the job as with any broker (see
``jobs.transitions.claim``), so a job delivered twice still runs once. A
delivered job that no worker claimed within ``JOBS["LOST_AFTER"]`` (its
cluster died with it in memory) is delivered again.

Workers hear of new jobs at once: a trigger (migration 0005) sends
``NOTIFY jobs_job_ready`` when a row becomes deliverable, and the pusher
waits on ``LISTEN`` between deliveries instead of polling, or until the
next delayed job falls due. It still looks every ``Q_CLUSTER["poll"]`` seconds, for retries whose backoff ran out and
for a notification lost with a dropped connection.

Other django-q2 tasks (the TTL and reaper schedules, anything a project
sends with ``async_task``) go through django-q2's own ORM queue table, which
this broker also serves.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from jobs.conf import jobs_settings
from jobs.delivery import deliver
from jobs.queue import job_package

logger = logging.getLogger(__name__)

READY_CHANNEL = "jobs_job_ready"
TASK_CHANNEL = "jobs_q2_task"
JOB_ACK_PREFIX = "job:"

class JobMessages:
    """Acknowledgements for a broker whose jobs are rows: a job's message needs no deleting.

    Mixed into an ORM broker, before it: ids ``job:<id>`` are the jobs; any
    other is one of django-q2's own tasks.
    """

    def acknowledge(self, task_id: Any) -> None:
        """Forget a finished task; a job's row already says how it ended."""
        if not str(task_id).startswith(JOB_ACK_PREFIX):
            super().acknowledge(task_id)

    def fail(self, task_id: Any) -> None:
        """Drop a message the pusher could not read (only ever a django-q2 task)."""
        self.acknowledge(task_id)

    def delete(self, task_id: Any) -> None:
        """Delete a django-q2 task; a job leaves the queue by its own status."""
        if not str(task_id).startswith(JOB_ACK_PREFIX):
            super().delete(task_id)


class JobTableBroker(JobMessages, ORM):
    """django-q2 broker: jobs from the job table, other tasks from django-q2's ORM queue."""

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key)
        self._listening_on: Any = None
        self._generic_checked = 0.0
        self._generic_hint = True
        self._drained = False
        # When the next delayed or backing-off job falls due, if known.
        self._next_due: Any = None
        # Whether jobs of limited kinds may be waiting (see jobs.delivery.deliver).
        self._limited_waiting = True

    # --- What the web side calls -------------------------------------------

    def enqueue(self, task: str) -> Any:
        """Queue a django-q2 task that is not a job (schedules, plain ``async_task``)."""
        pk = super().enqueue(task)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_notify(%s, '')", [TASK_CHANNEL])
        except DatabaseError:  # the pusher looks every poll interval anyway
            logger.warning("Could not notify the cluster of a new task", exc_info=True)
        return pk

    def queue_size(self) -> int:
        """Pending jobs no cluster has taken yet, plus django-q2 tasks waiting."""
        from jobs.models import Job, JobStatus

        now = timezone.now()
        jobs = Job.objects.filter(status=JobStatus.PENDING, cancel_requested=False, enqueued_at__isnull=True)
        jobs = jobs.exclude(available_at__gt=now)
        return jobs.count() + super().queue_size()

    # --- What the cluster's pusher calls -------------------------------------

    def dequeue(self) -> list[tuple[str, str]] | None:
        """Return the next batch of (ack id, signed task), waiting for a NOTIFY if there is none."""
        try:
            self._listen()
            if self._drained:
                # The last look emptied the queue: nothing to take until a
                # NOTIFY says so (or the poll interval passes).
                self._wait(self._wait_seconds())
            tasks = self._deliver_jobs()
            if self._generic_hint or time.monotonic() - self._generic_checked >= Conf.POLL:
                tasks += self._deliver_tasks()
            return tasks or None
        except DatabaseError:
            # PostgreSQL restarted or the network dropped: start again on a
            # new connection rather than letting django-q2 restart the pusher
            # ten seconds later.
            logger.warning("Job broker lost its database connection; reconnecting", exc_info=True)
            self._reset()
            time.sleep(min(Conf.POLL, 0.5))
        return None

    def info(self) -> str:
        """Describe the broker for ``qinfo`` and the cluster's start-up line."""
        return "Job table (PostgreSQL, LISTEN/NOTIFY)"

    # --- Internals -----------------------------------------------------------

    def _listen(self) -> None:
        connection.ensure_connection()
        raw = connection.connection
        if raw is not self._listening_on:
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {READY_CHANNEL}; LISTEN {TASK_CHANNEL}")
                # What this connection writes (delivery stamps, django-q2's
                # task locks) may be lost in a database crash at no cost: the
                # job is then simply delivered again. Not waiting for the WAL
                # flush takes a millisecond off every pickup.
                cursor.execute("SET synchronous_commit = off")
            self._listening_on = raw
            # Whatever was sent while nobody listened is in the table: look now.
            self._generic_hint = True
            self._drained = False

    def _reset(self) -> None:
        self._listening_on = None
        try:
            connection.close()
        except DatabaseError:
            pass

    def _deliver_jobs(self) -> list[tuple[str, str]]:
        now = timezone.now()
        limit = max(1, Conf.BULK)
        skipped = not self._limited_waiting
        taken = deliver(
            now=now,
            lost=now - timedelta(seconds=jobs_settings.LOST_AFTER),
            limit=limit,
            limited_waiting=self._limited_waiting,
        )
        self._next_due = taken.next_due
        self._limited_waiting = taken.limited_waiting
        # Look again at once if a limited job was taken (the next may fit
        # too) or if this look skipped limited jobs that turn out to wait.
        newly_waiting = skipped and taken.limited_waiting
        self._drained = len(taken.jobs) < limit and not taken.limited and not newly_waiting
        return [(f"{JOB_ACK_PREFIX}{pk}", job_package(pk, kind, now)) for pk, kind in taken.jobs]

    def _wait_seconds(self) -> float:
        # A delayed job starts on time (within a few ms), not at the next poll.
        if self._next_due is None:
            return Conf.POLL
        return max(0.0, min(Conf.POLL, (self._next_due - timezone.now()).total_seconds()))

    def _deliver_tasks(self) -> list[tuple[str, str]]:
        self._generic_checked = time.monotonic()
        self._generic_hint = False
        now = timezone.now()
        delivered = []
        waiting = OrmQ.objects.filter(key=self.list_key, lock__lt=now).order_by("lock")[: Conf.BULK]
        for task in waiting:
            # Another cluster may take it first: only a conditional update counts.
            with transaction.atomic():
                taken = OrmQ.objects.filter(id=task.id, lock=task.lock).update(lock=self.timeout(task))
            if taken:
                delivered.append((task.pk, task.payload))
        return delivered

    def _wait(self, seconds: float) -> None:
        # psycopg's own errors (the server went away while we waited) become
        # Django's DatabaseError, which dequeue() answers by reconnecting.
        with connection.wrap_database_errors:
            woken = False
            for notify in connection.connection.notifies(timeout=seconds, stop_after=1):
                woken = True
                self._generic_hint |= notify.channel == TASK_CHANNEL
            if woken:
                # One look answers every NOTIFY that came meanwhile: drain them.
                for notify in connection.connection.notifies(timeout=0):
                    self._generic_hint |= notify.channel == TASK_CHANNEL
