"""Helpers for the fault tests: cluster environments, waiting, killing, counting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from django.db import connection

from jobs.models import Job, JobStatus
from tests.faults import fault_handlers
from tests.support.processes import BASE_DIR, child_env

TERMINAL = set(JobStatus.terminal())

KILL_MARGIN = 1
# django-q2 kills a task KILL_MARGIN + 3 s (its guard's buffer) after the
# job's timeout; the lease must outlast that, or the reaper would hand a job
# to a second worker while the first still runs it. A few seconds more,
# because the guard counts its loop turns, which run late on a busy machine.
LEASE_GRACE = KILL_MARGIN + 7
DEFAULT_TIMEOUT = 5
PURCHASES_TIMEOUT = 4
LONGEST_TIMEOUT = max(fault_handlers.SLEEP_TIMEOUT, PURCHASES_TIMEOUT, DEFAULT_TIMEOUT)
# The jobs.E001 check wants retry > timeout + kill margin + its 30 s margin;
# one second more is "just above" what it allows.
Q_RETRY = LONGEST_TIMEOUT + KILL_MARGIN + 30 + 1

# What every worker (and child process) of the fault tests runs with:
# short timeouts and leases so a lost worker is noticed in seconds.
FAULT_ENV = {
    "JOBS_HANDLER_MODULES": "tests.faults.fault_handlers",
    "JOBS_KILL_MARGIN": str(KILL_MARGIN),
    "JOBS_LEASE_GRACE": str(LEASE_GRACE),
    "JOBS_DEFAULT_TIMEOUT": str(DEFAULT_TIMEOUT),
    "JOBS_RETRY_BACKOFF_BASE": "1",
    "JOBS_RETRY_BACKOFF_MAX": "2",
    "JOBS_REAPER_INTERVAL": "5",
    "PURCHASES_TIMEOUT": str(PURCHASES_TIMEOUT),
    "PURCHASES_REPORT_TIMEOUT": str(PURCHASES_TIMEOUT),
    "PURCHASES_PAYMENT_DELAY": "0",
    "Q_WORKERS": "2",
    "Q_TIMEOUT": str(LONGEST_TIMEOUT + KILL_MARGIN),
    "Q_RETRY": str(Q_RETRY),
}

# The same knobs for the reaper when the test process runs it.
JOBS_OVERRIDES = {
    "KILL_MARGIN": KILL_MARGIN,
    "LEASE_GRACE": LEASE_GRACE,
    "DEFAULT_TIMEOUT": DEFAULT_TIMEOUT,
    "RETRY_BACKOFF_BASE": 1,
    "RETRY_BACKOFF_MAX": 2,
    "REAPER_INTERVAL": 5,
}


def status_counts(ids: Iterable[Any]) -> dict[str, int]:
    return dict(Counter(Job.objects.filter(pk__in=list(ids)).values_list("status", flat=True)))


def settle(
    ids: Iterable[Any],
    *,
    timeout: float,
    reap: Callable[[], Any] | None = None,
    interval: float = 0.5,
    logs: Callable[[], str] = lambda: "",
) -> dict[str, int]:
    """Poll until every job in ``ids`` is terminal, calling ``reap`` between looks."""
    ids = list(ids)
    deadline = time.monotonic() + timeout
    while True:
        if reap is not None:
            reap()
        counts = status_counts(ids)
        if sum(n for status, n in counts.items() if status in TERMINAL) == len(ids):
            return counts
        if time.monotonic() > deadline:
            raise AssertionError(
                f"After {timeout}s not every job is terminal: {counts}\n{logs()}"
            )
        time.sleep(interval)


def paying(job: Job) -> Job | None:
    """The purchase job, once a worker has reserved its stock and waits for the payment provider."""
    job.refresh_from_db()
    if job.status == JobStatus.PROCESSING and job.progress_percentage == 40:
        return job
    assert job.status in (JobStatus.PENDING, JobStatus.PROCESSING), (job.status, job.error)
    return None


def worker_pid(job: Job) -> int:
    """The pid in the job's ``worker`` field ("host:pid")."""
    return int(job.worker.rsplit(":", 1)[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child stays a zombie until its parent reaps it.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def executions(job_ids: Iterable[Any] | None = None) -> list[str]:
    """Job ids in the unique side-effect table."""
    return _job_ids(fault_handlers.EXECUTIONS, job_ids)


def runs(job_ids: Iterable[Any] | None = None) -> list[str]:
    """Job ids of every handler run logged, one per run."""
    return _job_ids(fault_handlers.RUNS, job_ids)


def _job_ids(table: str, job_ids: Iterable[Any] | None) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT job_id FROM {table}")
        found = [row[0] for row in cursor.fetchall()]
    if job_ids is None:
        return found
    wanted = {str(pk) for pk in job_ids}
    return [pk for pk in found if pk in wanted]


def manage_shell(code: str, *, timeout: float = 60, **env: str) -> Any:
    """Run ``code`` in a ``manage.py shell -c`` child; return the JSON on its last stdout line."""
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "shell", "-c", code],
        cwd=BASE_DIR,
        env=child_env(**{**FAULT_ENV, **env}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def uuids(values: Iterable[str]) -> list[uuid.UUID]:
    return [uuid.UUID(value) for value in values]


def tail(path: Path, lines: int = 80) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return f"--- {path.name} ---\n" + "\n".join(text.splitlines()[-lines:])


def send_duplicate(job_id: Any, kind: str) -> str:
    """Send one more queue message that runs ``job_id``, as a broker redelivering it would.

    Not ``jobs.queue.enqueue``: with the job table as the queue that only
    marks a pending job undelivered, and never makes a second message.
    """
    from django_q.tasks import async_task

    from jobs.queue import RUNNER

    return async_task(RUNNER, str(job_id), kind)

