"""The job changelist's search box: ids (full, or the short id the admin shows), owners and keys, by index."""

from __future__ import annotations

import uuid

from django.contrib.auth import get_user_model
from django.db.models import Q

from jobs.models import JobQuerySet
from jobs.selectors import job_id_range

HELP_TEXT = (
    "A job id (the 8-character short id or the full id), an owner's username or e-mail, "
    "or an idempotency key."
)


def search_jobs(queryset: JobQuerySet, term: str) -> JobQuerySet:
    """``queryset`` narrowed to the jobs that ``term`` names; every branch is an index lookup.

    A short id (or any start of an id of 8 hex digits or more) is a range of
    the primary key, not a LIKE over the id cast to text, which would read
    the whole table. It may also be a username or a key, so those match too.
    """
    term = term.strip()
    if not term:
        return queryset
    try:
        return queryset.filter(pk=uuid.UUID(term))
    except ValueError:
        pass
    owners = list(
        get_user_model()
        .objects.filter(Q(username__iexact=term) | Q(email__iexact=term))
        .values_list("pk", flat=True)[:100]
    )
    matches = Q(owner_id__in=owners) | Q(idempotency_key=term)
    id_range = job_id_range(term)
    if id_range is not None:
        matches |= Q(pk__range=id_range)
    return queryset.filter(matches)
