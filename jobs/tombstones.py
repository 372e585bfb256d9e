"""Tombstones of removed jobs: recorded with each delete, looked up on a miss, purged after a while.

A job's owner who asks for a job that was removed (expired, deleted, purged
by staff) learns when and why, as ``410 Gone``, for
``JOBS_TOMBSTONE_RETENTION`` seconds; anyone else, and everyone after that,
gets the ``404`` of an unknown id. Nothing here runs on a found job's path:
a tombstone is read only after the job lookup came back empty.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import connections
from django.db.models import CharField, DateTimeField, Value
from django.db.models.constants import OnConflict
from django.utils import timezone
from rest_framework.fields import DateTimeField as DRFDateTimeField

from jobs.conf import jobs_settings
from jobs.exceptions import JobGone
from jobs.models import JobQuerySet
from jobs.selectors import owner_and_job_pk
from jobs.tombstone_models import Tombstone, TombstoneReason


def tombstones_record(jobs: JobQuerySet, *, reason: str, now: datetime | None = None) -> None:
    """Write a tombstone for each owned job of ``jobs``, in one ``INSERT ... SELECT``.

    Call it in the transaction that deletes them, just before the delete, with
    the rows locked: one statement per batch, whatever its size. A job
    without an owner gets none (nobody could be told). A tombstone that
    exists already is kept.
    """
    removed_at = now or timezone.now()
    rows = (
        jobs.filter(owner__isnull=False)
        .order_by()
        .annotate(
            tomb_removed_at=Value(removed_at, output_field=DateTimeField()),
            tomb_reason=Value(reason, output_field=CharField()),
        )
        .values_list("pk", "owner_id", "kind", "tomb_removed_at", "tomb_reason")
    )
    connection = connections[rows.db]
    select, params = rows.query.get_compiler(using=rows.db).as_sql()
    fields = [Tombstone._meta.get_field(name) for name in ("job_id", "owner", "kind", "removed_at", "reason")]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    insert = connection.ops.insert_statement(on_conflict=OnConflict.IGNORE)
    suffix = connection.ops.on_conflict_suffix_sql(fields, OnConflict.IGNORE, None, None)
    table = connection.ops.quote_name(Tombstone._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"{insert} {table} ({columns}) {select} {suffix}", params)


def tombstone_for_owner(*, owner: Any, job_id: str, now: datetime | None = None) -> Tombstone | None:
    """The tombstone of the owner's removed job ``job_id``, if removed within the retention; else None."""
    key = owner_and_job_pk(owner, job_id)
    if key is None:
        return None
    owner_id, pk = key
    # Filtered on removed_at too: the purge runs every few minutes, and a
    # tombstone past the retention is already no longer an answer.
    return Tombstone.objects.filter(
        pk=pk, owner_id=owner_id, removed_at__gte=_cutoff(now)
    ).first()


def tombstones_purge(*, now: datetime | None = None) -> int:
    """Delete the tombstones older than ``JOBS_TOMBSTONE_RETENTION``; return how many went."""
    # Nothing refers to a tombstone: one DELETE, no per-row collection.
    deleted, _ = Tombstone.objects.filter(removed_at__lt=_cutoff(now)).delete()
    return deleted


def _cutoff(now: datetime | None) -> datetime:
    return (now or timezone.now()) - timedelta(seconds=jobs_settings.TOMBSTONE_RETENTION)


# How the answer says why the job went, after "This job ".
_WHY = {
    TombstoneReason.EXPIRED: "expired at {at}: its time to live passed",
    TombstoneReason.DELETED: "was deleted by its owner at {at}",
    TombstoneReason.PURGED: "was purged by staff at {at}",
}


def tombstone_gone(tombstone: Tombstone) -> JobGone:
    """The ``410 Gone`` to answer for a removed job: when and why, in words and as fields."""
    removed_at = DRFDateTimeField().to_representation(tombstone.removed_at)
    why = _WHY.get(tombstone.reason, "was removed at {at}").format(at=removed_at)
    return JobGone(
        f"This job {why}; its result is gone. Submit the operation again if you still need it.",
        fields={
            "id": str(tombstone.job_id),
            "kind": tombstone.kind,
            "removed_at": removed_at,
            "reason": tombstone.reason,
        },
    )


def gone_body(*, owner: Any, job_id: Any) -> dict[str, Any] | None:
    """The ``410`` body (detail, code, when, why) for the owner's removed job ``job_id``; None if none."""
    tombstone = tombstone_for_owner(owner=owner, job_id=job_id)
    if tombstone is None:
        return None
    gone = tombstone_gone(tombstone)
    return {"detail": gone.message, "code": gone.code, **gone.fields}
