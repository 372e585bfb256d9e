"""django-q2's ORM broker on SQLite, woken by the database file's commits instead of a timer.

django-q2's ORM broker looks at its queue table every ``Q_CLUSTER["poll"]``
seconds: a job waits half that interval on average before a worker hears of
it, and every look opens a connection and runs a query, which an idle cluster
pays for all day. On SQLite every writer is on this machine and shares the
same file, and ``PRAGMA data_version`` tells a connection, from shared memory
and without reading a page, whether another connection has committed since
it last asked. So the pusher asks that every few milliseconds on a read-only
connection of its own and looks at the queue only when something was
committed, or at least every ``poll`` seconds (tasks whose retry time came),
or when the next delayed job falls due.

As on PostgreSQL (``jobs.broker``), the job table is the jobs' queue: a look
takes pending, due jobs by priority and within the queues' limits
(``jobs.delivery``; one UPDATE, which SQLite runs under its write lock, so
two clusters never take the same job), then django-q2's other tasks.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any
from urllib.parse import quote

from datetime import timedelta

from django.db import DatabaseError, connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf, logger

from jobs.broker import JOB_ACK_PREFIX, JobMessages
from jobs.queue import job_package
from jobs.conf import jobs_settings
from jobs.delivery import deliver, next_due

# How often the pusher asks whether anything was committed: the pickup's
# added wait is half of it on average; each ask costs a few microseconds.
WAKE_CHECK_SECONDS = 0.004


class SqliteWakeBroker(JobMessages, ORM):
    """The ORM broker, looking at its queue when the SQLite file changed (see the module)."""

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key)
        self._watch: sqlite3.Connection | None = None
        self._version: int | None = None
        self._next_look = 0.0
        self._watching = True

    def dequeue(self) -> list[tuple[Any, Any]] | None:
        """Take due tasks when the database changed (or ``poll`` passed); else wait a moment."""
        now = time.monotonic()
        if now < self._next_look and not self._changed():
            # The pusher calls again at once; it checks its stop event in between.
            time.sleep(WAKE_CHECK_SECONDS)
            return None
        wall = timezone.now()
        taken = self._deliver_jobs(wall)
        due = next_due(wall)
        wait = Conf.POLL if due is None else min(Conf.POLL, max(0.0, (due - wall).total_seconds()))
        # A limited job was taken: look again at once, the next one may fit too.
        self._next_look = now if taken.limited else now + wait
        delivered = [(f"{JOB_ACK_PREFIX}{pk}", job_package(pk, kind, wall)) for pk, kind in taken.jobs]
        tasks = list(
            self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]
        )
        for task in tasks:
            # Another cluster may have been faster: the update then matches nothing.
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                delivered.append((task.pk, task.payload))
        return delivered or None

    def _deliver_jobs(self, now: Any) -> Any:
        limit = max(1, Conf.BULK)
        return deliver(now=now, lost=now - timedelta(seconds=jobs_settings.LOST_AFTER), limit=limit)

    def queue_size(self) -> int:
        """Pending, due jobs no cluster has taken yet, plus django-q2 tasks waiting."""
        from jobs.models import Job, JobStatus

        jobs = Job.objects.filter(status=JobStatus.PENDING, cancel_requested=False, enqueued_at__isnull=True)
        return jobs.exclude(available_at__gt=timezone.now()).count() + super().queue_size()

    def _changed(self) -> bool:
        if not self._watching:
            return False
        try:
            if self._watch is None:
                path = connections[Conf.ORM].settings_dict["NAME"]
                # A URI, for read-only mode: quoted, so a path with spaces or "?" still opens.
                self._watch = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, check_same_thread=False)
                self._version = None
            version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        except (sqlite3.Error, DatabaseError, KeyError):
            # E.g. an in-memory database: no file to watch. Polling still works.
            logger.warning(
                "Cannot watch the SQLite database for commits; looking at the queue every %s s.",
                Conf.POLL,
                exc_info=True,
            )
            self._watching = False
            return True
        changed = version != self._version
        self._version = version
        return changed

