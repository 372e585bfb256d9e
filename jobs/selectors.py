"""Read-only queries on jobs, scoped to who is asking."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.models import Job, JobQuerySet, JobStatus
from jobs.registry import all_kinds


def job_get_for_owner(*, owner: Any, job_id: str) -> Job | None:
    """Return the owner's job ``job_id``, or None if malformed, unknown or someone else's."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return None
    # No ORDER BY: the primary key finds at most one row.
    return next(iter(Job.objects.filter(pk=pk, owner=owner).defer("payload", "traceback", "call")), None)


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


def stuck_condition(now: datetime | None = None) -> Q:
    """Processing jobs that started longer ago than their kind's timeout allows."""
    now = now or timezone.now()
    kinds = all_kinds()
    late = Q()
    for kind in kinds:
        late |= Q(kind=kind.name, started_at__lt=now - timedelta(seconds=kind.timeout))
    default = timedelta(seconds=jobs_settings.DEFAULT_TIMEOUT)
    late |= ~Q(kind__in=[kind.name for kind in kinds]) & Q(started_at__lt=now - default)
    return Q(status=JobStatus.PROCESSING) & late
