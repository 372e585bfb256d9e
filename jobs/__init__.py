"""Long-running operations as jobs, run by django-q2 workers.

Everything an operation needs::

    from jobs import job, submit, JobContext, JobError
    from jobs import runs_as_job, current_job   # any DRF action as a job, on request
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from jobs.context import JobContext, current_job
from jobs.exceptions import JobCancelled, JobError
from jobs.registry import Completed, OptionLimits, job

if TYPE_CHECKING:
    from jobs.models import Job

__all__ = [
    "Completed",
    "JobCancelled",
    "JobContext",
    "JobError",
    "OptionLimits",
    "current_job",
    "job",
    "runs_as_job",
    "submit",
]


def submit(
    kind: str,
    payload: Mapping[str, Any],
    *,
    owner: Any,
    idempotency_key: str | None = None,
    priority: int | None = None,
    run_at: datetime | None = None,
) -> Job:
    """Validate ``payload`` for ``kind``, store a pending job, enqueue it on commit; return the job.

    The public face of the one submit service, ``jobs.services.job_submit``
    (which also tells whether an ``idempotency_key`` replayed an earlier job).
    Invalid payloads raise DRF's ``ValidationError``. ``priority`` (default:
    the kind's) orders it within its queue, higher first; ``run_at`` (aware)
    keeps it pending until that time.
    """
    # The service needs the models, which cannot be imported before the app
    # registry is ready: import it on first call, not when `jobs` is imported.
    from jobs.services import job_submit

    return job_submit(
        kind=kind, payload=payload, owner=owner, idempotency_key=idempotency_key, priority=priority, run_at=run_at
    ).job


def __getattr__(name: str) -> Any:
    # `runs_as_job` needs the models, which cannot be imported before the app
    # registry is ready; resolve it on first use instead of at import.
    if name == "runs_as_job":
        from jobs.api.actions import runs_as_job

        return runs_as_job
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
