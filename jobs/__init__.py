"""Long-running operations as jobs, run by django-q2 workers.

Everything an operation needs::

    from jobs import job, submit, JobContext, JobError
"""

from __future__ import annotations

from typing import Any

from jobs.context import JobContext
from jobs.exceptions import JobCancelled, JobError
from jobs.registry import job

__all__ = ["JobCancelled", "JobContext", "JobError", "job", "submit"]


def __getattr__(name: str) -> Any:
    # `submit` needs the models, which cannot be imported before the app
    # registry is ready; resolve it on first use instead of at import.
    if name == "submit":
        from jobs.services import submit

        return submit
    raise AttributeError(f"module 'jobs' has no attribute {name!r}")
