"""The audit timeline of a job (JobEvent rows): who did what, when, on which attempt.

Not the `/events/` stream (`jobs.api.streams`), which tells clients of changes as they happen.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from django.utils import timezone

from jobs.models import JobEvent


def event_record(
    *,
    job_id: uuid.UUID,
    type: str,  # noqa: A002 - the event's type, as in the model
    actor: str = "",
    attempt: int | None = None,
    message: str = "",
    at: datetime | None = None,
) -> None:
    """Append one event to the job's timeline (at ``at``, default now)."""
    JobEvent.objects.create(
        job_id=job_id,
        type=type,
        actor=actor[:255],
        attempt=attempt,
        message=message,
        at=at or timezone.now(),
    )


def event_record_many(
    *, job_ids: Iterable[uuid.UUID], type: str, actor: str = "", message: str = ""  # noqa: A002
) -> None:
    """Append the same event to many jobs' timelines in one insert."""
    JobEvent.objects.bulk_create(
        JobEvent(job_id=job_id, type=type, actor=actor[:255], message=message)
        for job_id in job_ids
    )


def actor_for_user(user: object, *, via: str) -> str:
    """Describe a user acting through ``via`` ("api", "staff", "command")."""
    username = getattr(user, "get_username", lambda: "")()
    return f"{via}:{username}" if username else via
