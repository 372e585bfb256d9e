"""The only module that talks to django-q2.

A queue message carries the job id and nothing else: the row is the source
of truth, so a lost message can always be sent again from it.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from django_q.models import Schedule
from django_q.tasks import async_task

from jobs.registry import get_kind

logger = logging.getLogger(__name__)

RUNNER = "jobs.runner.run_job"


def enqueue(job_id: uuid.UUID, kind: str) -> str:
    """Send the job to the django-q2 cluster now; return the task id."""
    from jobs.models import Job

    timeout = get_kind(kind).timeout
    task_id = async_task(
        RUNNER, str(job_id), task_name=f"{kind}:{job_id}", group=kind, timeout=timeout
    )
    Job.objects.filter(pk=job_id).update(task_id=task_id or "")
    logger.info("Enqueued job %s (%s) as task %s", job_id, kind, task_id)
    return task_id


def enqueue_at(job_id: uuid.UUID, kind: str, when: datetime) -> None:
    """Send the job to the cluster at ``when`` (django-q2's scheduler checks every ~30 s)."""
    timeout = get_kind(kind).timeout
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
