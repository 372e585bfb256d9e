"""Fixtures for the fault tests: worker clusters, the side-effect tables, test-process settings."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

import pytest
from django.db import connection

from jobs.models import Job
from tests.faults import fault_handlers  # also registers the faults.* kinds here
from tests.faults.support import FAULT_ENV, JOBS_OVERRIDES, pid_alive, worker_pid
from tests.support.processes import Launcher, stop, wait_for


@pytest.fixture(autouse=True)
def fault_settings(settings) -> None:
    """Give the test process's reaper the workers' short leases and margins."""
    settings.JOBS = {**settings.JOBS, **JOBS_OVERRIDES}


@pytest.fixture
def fault_tables(transactional_db):
    """Create the side-effect tables (raw SQL, SQLite and PostgreSQL alike); drop them after."""
    _drop_tables()
    with connection.cursor() as cursor:
        for statement in fault_handlers.DDL:
            cursor.execute(statement)
    yield
    _drop_tables()


def _drop_tables() -> None:
    # A test that restarted the database may leave a dead connection behind.
    connection.close()
    with connection.cursor() as cursor:
        for table in (fault_handlers.EXECUTIONS, fault_handlers.RUNS):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


class Clusters(Launcher):
    """``manage.py qcluster`` processes with the fault tests' environment, stopped by pid at the end."""

    def start(self, name: str = "cluster", *, ready: bool = True, **env: str) -> subprocess.Popen:
        return self.qcluster(name, ready=ready, **{**FAULT_ENV, **env})

    def stop(self, process: subprocess.Popen) -> None:
        stop(process, grace=15)

    def kill_worker(self, job: Job, process: subprocess.Popen) -> int:
        """SIGKILL the worker process running ``job``; it must belong to ``process``'s cluster."""
        pid = worker_pid(job)
        assert os.getpgid(pid) == process.pid, f"worker {pid} is not in cluster {process.pid}"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_alive(pid), timeout=10, interval=0.05, what=f"worker {pid} to die")
        return pid

    def group_of(self, pid: int) -> subprocess.Popen | None:
        """The cluster whose process group holds ``pid``, if it still runs."""
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            return None
        return next((p for p in self.processes if p.pid == pgid), None)


@pytest.fixture
def clusters(tmp_path, fault_tables):
    group = Clusters(tmp_path)
    try:
        yield group
    finally:
        group.stop_all()
        # Shown by pytest only when the test failed.
        print(group.logs())


@pytest.fixture
def reaper_schedule(transactional_db) -> Any:
    """The "jobs.reap" schedule as ``migrate`` leaves it (a transactional test's flush deletes it)."""
    from django.utils import timezone
    from django_q.models import Schedule

    from jobs.conf import jobs_settings
    from jobs.queue import REAPER_SCHEDULE_NAME, ensure_schedules

    ensure_schedules(every_minutes=jobs_settings.PURGE_EVERY_MINUTES)
    Schedule.objects.filter(name=REAPER_SCHEDULE_NAME).update(next_run=timezone.now())
    return Schedule.objects.get(name=REAPER_SCHEDULE_NAME)
