"""Long-running operations as jobs, run by django-q2 workers.

Everything an operation needs::

    from jobs import job, submit, JobContext, JobError
    from jobs import runs_as_job, current_job   # any DRF action as a job, on request
"""

from __future__ import annotations

from typing import Any

from jobs.context import JobContext, current_job
from jobs.exceptions import JobCancelled, JobError
from jobs.registry import Completed, job

__all__ = [
    "Completed",
    "JobCancelled",
    "JobContext",
    "JobError",
    "current_job",
    "job",
    "runs_as_job",
    "submit",
]


def __getattr__(name: str) -> Any:
    # `submit` and `runs_as_job` need the models, which cannot be imported before the app
    # registry is ready; resolve it on first use instead of at import.
    if name == "submit":
        from jobs.services import submit

        return submit
    if name == "runs_as_job":
        from jobs.api.actions import runs_as_job

        return runs_as_job
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
