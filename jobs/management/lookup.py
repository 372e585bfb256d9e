"""Finding the jobs and users that the jobs commands are told about on the command line."""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils import timezone

from jobs.management.confirm import USAGE_ERROR
from jobs.models import Job, JobQuerySet
from jobs.selectors import job_id_range

SHORT_ID = re.compile(r"^[0-9a-fA-F]{8}$")
SHORT_ID_LENGTH = 8


def short_id(job: Job) -> str:
    """The first eight characters of the job's id, as the admin and the commands show it."""
    return str(job.pk)[:SHORT_ID_LENGTH]


def job_by_reference(reference: str, jobs: JobQuerySet | None = None) -> Job:
    """The job whose full id, or 8-character short id, is ``reference``.

    A malformed reference is a usage error (exit 2); an unknown or ambiguous one exits 1.
    """
    jobs = Job.objects.all() if jobs is None else jobs
    text = reference.strip()
    if SHORT_ID.match(text):
        low, high = job_id_range(text)
        matches = list(jobs.filter(pk__gte=low, pk__lte=high).order_by("pk")[:5])
    else:
        try:
            pk = uuid.UUID(text)
        except ValueError:
            raise CommandError(
                f"{text[:60]!r} is not a job id: give the full id or its first 8 characters.",
                returncode=USAGE_ERROR,
            ) from None
        matches = list(jobs.filter(pk=pk))
    if not matches:
        raise CommandError(f"No job has the id {text!r}.")
    if len(matches) > 1:
        ids = ", ".join(str(job.pk) for job in matches)
        raise CommandError(f"{text!r} matches more than one job ({ids}): give the full id.")
    return matches[0]


def filter_jobs(jobs: JobQuerySet, options: dict[str, Any]) -> JobQuerySet:
    """``jobs`` narrowed by the commands' common filters, those present in ``options``.

    ``status`` (one or a list), ``kind``, ``owner`` (a username) and
    ``older_than`` / ``newer_than`` (timedeltas, on when a job was created).
    """
    now = timezone.now()
    status = options.get("status")
    if status:
        jobs = jobs.filter(status__in=status if isinstance(status, list) else [status])
    if options.get("kind"):
        jobs = jobs.filter(kind=options["kind"])
    if options.get("owner"):
        jobs = jobs.filter(owner=user_by_username(options["owner"]))
    if options.get("older_than") is not None:
        jobs = jobs.filter(created_at__lt=now - options["older_than"])
    if options.get("newer_than") is not None:
        jobs = jobs.filter(created_at__gte=now - options["newer_than"])
    return jobs


def user_by_username(username: str) -> Any:
    """The user called ``username``; an unknown name is a usage error (exit 2)."""
    user_model = get_user_model()
    try:
        return user_model._default_manager.get_by_natural_key(username)
    except user_model.DoesNotExist:
        raise CommandError(f"No user is called {username!r}.", returncode=USAGE_ERROR) from None
