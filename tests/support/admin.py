"""Helpers for the tests of the admin (its changelist and actions), the commands and the job timeline."""

from __future__ import annotations

import html
from typing import Any

from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from jobs.models import Job, JobStatus
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.factories import make_job  # noqa: F401 - the admin tests import it from here

CHANGELIST = "/admin/jobs/job/"


def change_url(job: Job) -> str:
    return f"/admin/jobs/job/{job.pk}/change/"


def bulk_jobs(count: int, *, status: str = JobStatus.FAILED, kind: str = "tests.noop", owner: Any = None) -> None:
    """Insert ``count`` jobs in one statement (finished ones with a finished_at)."""
    now = timezone.now()
    finished = now if status in JobStatus.terminal() else None
    Job.objects.bulk_create(
        Job(kind=kind, owner=owner, status=status, finished_at=finished, attempts=1) for _ in range(count)
    )


def staff_client(django_user_model: Any, username: str, *codenames: str) -> tuple[Any, Client]:
    """A staff user holding only ``jobs.<codename>`` permissions, and a client logged in as them."""
    user = django_user_model.objects.create_user(username=username, password="x-pass-123", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="jobs", codename__in=codenames)
    )
    client = Client()
    client.force_login(user)
    return user, client


def post_action(client: Client, action: str, jobs: list[Job] = (), *, query: str = "", across: bool = False, **extra: Any):
    """POST a changelist action as the action bar does (``index`` present)."""
    data: dict[str, Any] = {"action": action, "index": "0", "_selected_action": [str(job.pk) for job in jobs]}
    if across:
        data["select_across"] = "1"
    data.update(extra)
    return client.post(CHANGELIST + query, data)


def messages_of(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def action_names(client: Client) -> set[str]:
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    form = response.context["action_form"]
    return {name for name, _ in form.fields["action"].choices if name}


def text(response: Any) -> str:
    """The page's HTML with entities decoded (so JSON reads as JSON)."""
    return html.unescape(response.content.decode())


def status_of(job: Job) -> str:
    return Job.objects.values_list("status", flat=True).get(pk=job.pk)
