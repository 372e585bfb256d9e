"""Fault-injection job kinds for tests/faults.

Worker processes load this module through ``JOBS_HANDLER_MODULES``; the test
process imports it (tests/faults/conftest.py) so it can submit these kinds.

Every run of a fault kind is logged in ``faults_run`` (no constraint); the
side effect of ``faults.sleep`` goes to ``faults_execution``, whose UNIQUE job
id turns a second execution of one job into an error the tests can see.
Both tables are created with raw SQL by the ``fault_tables`` fixture.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from django.db import IntegrityError, connection, transaction

from jobs import JobContext, JobError, job
from jobs.exceptions import JobTimeout

EXECUTIONS = "faults_execution"
RUNS = "faults_run"

# The longest timeout here bounds django-q2's `retry` through the jobs.E001
# check: retry > timeout + JOBS_KILL_MARGIN + 30 (see tests/faults/support.py).
SLEEP_TIMEOUT = 8
KILL_TIMEOUT = 1
OVERRUN_TIMEOUT = 2

DDL = (
    (
        f"CREATE TABLE {EXECUTIONS} ("
        " job_id VARCHAR(36) NOT NULL UNIQUE,"
        " worker VARCHAR(255) NOT NULL,"
        " executed_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    ),
    (
        f"CREATE TABLE {RUNS} ("
        " job_id VARCHAR(36) NOT NULL,"
        " kind VARCHAR(100) NOT NULL,"
        " attempt INTEGER NOT NULL,"
        " worker VARCHAR(255) NOT NULL,"
        " ran_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
    ),
)


def _me() -> str:
    from jobs.runner import worker_name

    return worker_name()


def record_run(ctx: JobContext) -> None:
    """Log that this job's handler started on this attempt (any number of times)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RUNS} (job_id, kind, attempt, worker) VALUES (%s, %s, %s, %s)",
            [str(ctx.job_id), ctx.kind, ctx.attempt, _me()],
        )


def record_execution(ctx: JobContext, *, allow_rerun: bool = False) -> bool:
    """Record the job's one side effect; a second one is an error unless ``allow_rerun``."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {EXECUTIONS} (job_id, worker) VALUES (%s, %s)",
                [str(ctx.job_id), _me()],
            )
    except IntegrityError:
        if allow_rerun:
            return False
        raise JobError("executed_twice", f"Job {ctx.job_id} was executed a second time.") from None
    return True


@job("faults.sleep", timeout=SLEEP_TIMEOUT)
def sleep_job(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Execute once (recorded), then sleep ``payload["seconds"]``."""
    record_run(ctx)
    first = record_execution(ctx, allow_rerun=bool(payload.get("allow_rerun")))
    time.sleep(float(payload.get("seconds", 0)))
    return {"first": first, "worker": _me()}


@job("faults.kill_self", timeout=KILL_TIMEOUT)
def kill_self(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A poison job: SIGKILL its own worker process on every run."""
    record_run(ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@job("faults.overrun", timeout=OVERRUN_TIMEOUT)
def overrun(ctx: JobContext, payload: dict[str, Any]) -> str:
    """Run far past the kind's timeout (the runner's alarm cuts it short)."""
    record_run(ctx)
    time.sleep(float(payload.get("seconds", 60)))
    return "finished late"


@job("faults.stubborn", timeout=OVERRUN_TIMEOUT, max_attempts=1)
def stubborn(ctx: JobContext, payload: dict[str, Any]) -> str:
    """Ignore the timeout (as code stuck in a C call would): only a kill stops it."""
    record_run(ctx)
    deadline = time.monotonic() + float(payload.get("seconds", 60))
    while time.monotonic() < deadline:
        try:
            time.sleep(max(0.0, deadline - time.monotonic()))
        except JobTimeout:
            pass
    return "finished late"
