"""Read-only queries on jobs, scoped to who is asking."""

from __future__ import annotations

import uuid
from typing import Any

from jobs.models import Job, JobQuerySet


def job_get_for_owner(*, owner: Any, job_id: str) -> Job | None:
    """Return the owner's job ``job_id``, or None if malformed, unknown or someone else's."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.filter(pk=pk, owner=owner).first()


def job_list_for_owner(
    *, owner: Any, status: str | None = None, kind: str | None = None
) -> JobQuerySet:
    """Return the owner's jobs, newest first, optionally filtered."""
    jobs = Job.objects.for_owner(owner).order_by("-created_at", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    return jobs
