"""Rows and clients the tests make: jobs in any status, API tokens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import Job, JobStatus


def make_job(owner: Any = None, *, status: str = JobStatus.PENDING, kind: str = "tests.noop", **fields: Any) -> Job:
    """Create a job row directly in any status (no validation, no queue).

    Processing ones get ``started_at`` and one attempt; finished ones also
    ``finished_at`` and ``expires_at``. ``fields`` override any of it.
    """
    now = timezone.now()
    values: dict[str, Any] = {"kind": kind, "owner": owner, "status": status, "payload": {}}
    if status == JobStatus.PROCESSING:
        values.update(started_at=now, attempts=1)
    if status in JobStatus.terminal():
        values.update(attempts=1, started_at=now, finished_at=now, expires_at=now + timedelta(days=7))
    values.update(fields)
    # A row written once was last updated when it was created: a pending job
    # made "an hour ago" has waited an hour (its age counts from updated_at).
    values.setdefault("updated_at", values.get("created_at", now))
    return Job.objects.create(**values)


def token_for(user: Any) -> str:
    """The API token key of ``user`` (made on first use)."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def token_client(user: Any) -> APIClient:
    """An API client that sends ``Authorization: Bearer <token>`` for ``user``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client
