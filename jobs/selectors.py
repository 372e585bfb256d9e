"""Read-only queries on jobs, scoped to who is asking."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from jobs.conf import jobs_settings
from jobs.db import fetch_one_prepared
from jobs.models import Job, JobQuerySet, JobStatus
from jobs.registry import all_kinds


def owner_and_job_pk(owner: Any, job_id: str) -> tuple[Any, uuid.UUID] | None:
    """The owner's primary key and ``job_id`` as a UUID; None if either is missing or malformed."""
    try:
        pk = uuid.UUID(str(job_id))
    except ValueError:
        return None
    owner_id = getattr(owner, "pk", None)
    return None if owner_id is None else (owner_id, pk)


def job_get_for_owner(*, owner: Any, job_id: str) -> Job | None:
    """Return the owner's job ``job_id``, or None if malformed, unknown or someone else's."""
    polled = job_poll_for_owner(owner=owner, job_id=job_id)
    return None if polled is None else polled.job


def job_poll_for_owner(*, owner: Any, job_id: str) -> PolledJob | None:
    """The owner's job ``job_id`` as a poll reads it, or None if malformed, unknown or someone else's.

    Its status and version columns are there at once; the ``Job`` is made
    only when asked for (``.job``): a ``304`` never needs it.
    """
    key = owner_and_job_pk(owner, job_id)
    if key is None:
        return None
    owner_id, pk = key
    db = connections[DEFAULT_DB_ALIAS]  # not the proxy: each read through it looks the connection up
    if db.vendor == "postgresql":
        # The hottest read of all (every poll): prepared once per connection
        # instead of compiled by the ORM and planned by PostgreSQL each time.
        row = fetch_one_prepared(_POLL_SQL, [pk, owner_id], db=db)
        return None if row is None else PolledJob(row, db=db)
    job = Job.objects.filter(pk=pk, owner_id=owner_id).defer(*_NOT_POLLED).first()
    return None if job is None else PolledJob(job=job)


class PolledJob:
    """A job row read by a poll, read like a ``Job``; the ``Job`` itself built only if asked for.

    On PostgreSQL the row also holds the document's ETag, computed by the
    query, and its times and JSON as text, converted when read: a ``304``
    converts nothing, and a ``200`` builds its document from the row
    without a model instance.
    """

    __slots__ = ("_row", "_job", "_db")

    def __init__(self, row: tuple[Any, ...] | None = None, *, job: Job | None = None, db: Any = None) -> None:
        self._row = row
        self._job = job
        # The connection the row came from: its loaders convert the row's text.
        self._db = db

    def __getattr__(self, name: str) -> Any:
        if self._job is not None:
            return getattr(self._job, name)
        index = _POLL_INDEX.get("id" if name == "pk" else name)
        if index is None:
            return getattr(self.job, name)
        return _converted(name, self._row[index], self._db)  # type: ignore[index]

    @property
    def etag(self) -> str:
        """The strong ETag of the job's document (``job_etag``)."""
        if self._row is not None:
            return self._row[-1]
        return job_etag(self._job)  # type: ignore[arg-type]

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in JobStatus.terminal()

    @property
    def job(self) -> Job:
        """The ``Job`` (its polled columns; the rest deferred)."""
        if self._job is None:
            values = [_converted(name, value, self._db) for name, value in zip(_POLL_FIELDS, self._row)]  # type: ignore[arg-type]
            self._job = Job.from_db(DEFAULT_DB_ALIAS, _POLL_FIELDS, values)
        return self._job


def _converted(name: str, value: Any, db: Any) -> Any:
    """A polled column's value as the ORM would load it (times and JSON come as text)."""
    if value is None:
        return None
    if name in _TIME_FIELDS:
        return _time_loader(db).load(value.encode())
    if name in _JSON_FIELDS:
        return _JSON_FIELDS[name].from_db_value(value, None, db)
    return value


# The columns a job document's version is made of. Every change to a job
# sets updated_at; the status, progress and attempt columns are in it too, so
# the version changes whenever the document does, and is known before the
# document is built.
VERSION_FIELDS = (
    "updated_at",
    "status",
    "progress_percentage",
    "progress_message",
    "attempts",
    "max_attempts",
    "cancel_requested",
    "started_at",
    "finished_at",
    "expires_at",
    "result_status",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def job_version(job: Job) -> str:
    """The version of ``job``'s document as text: its id and ``VERSION_FIELDS``, ``|``-separated.

    Times are microseconds since the epoch, booleans ``true``/``false`` and
    NULL empty: exactly what the poll's query (``_version_sql``) computes on
    PostgreSQL from the stored row.
    """
    parts = [str(job.pk)]
    for name in VERSION_FIELDS:
        value = getattr(job, name)
        if value is None:
            parts.append("")
        elif isinstance(value, bool):
            parts.append("true" if value else "false")
        elif isinstance(value, datetime):
            parts.append(str((value - _EPOCH) // _MICROSECOND))
        else:
            parts.append(str(value))
    return "|".join(parts)


def job_etag(job: Job | PolledJob) -> str:
    """Return the strong ETag of ``job``'s document, from its version alone."""
    if isinstance(job, PolledJob):
        return job.etag
    return '"' + hashlib.sha256(job_version(job).encode()).hexdigest()[:32] + '"'


def _version_sql() -> str:
    """``job_version`` and ``job_etag`` as SQL (PostgreSQL), over one ``jobs_job`` row."""
    quote = connection.ops.quote_name
    parts = ["id::text"]
    for name in VERSION_FIELDS:
        field = Job._meta.get_field(name)
        column = quote(field.column)
        kind = field.get_internal_type()
        if kind == "DateTimeField":
            # Exact: EXTRACT gives a numeric with every microsecond (PostgreSQL 14+).
            parts.append(f"coalesce((EXTRACT(EPOCH FROM {column}) * 1000000)::bigint::text, '')")
        else:
            # A boolean's text is true/false; a NULL is empty, as job_version has it.
            parts.append(f"coalesce({column}::text, '')")
    version = "concat_ws('|', {})".format(", ".join(parts))
    return f"'\"' || left(encode(sha256(convert_to({version}, 'UTF8')), 'hex'), 32) || '\"'"


# Per psycopg connection (pooled ones live long): the loader its adapters give timestamptz text.
_time_loaders: WeakKeyDictionary[Any, Any] = WeakKeyDictionary()


def _time_loader(db: Any) -> Any:
    """The loader ``db``'s psycopg connection gives ``timestamptz`` text (Django's: aware, in its time zone)."""
    raw = db.connection
    loader = _time_loaders.get(raw)
    if loader is None:
        from psycopg.pq import Format

        oid = raw.adapters.types["timestamptz"].oid
        loader = _time_loaders[raw] = raw.adapters.get_loader(oid, Format.TEXT)(oid, raw)
    return loader


# What a poll reads: the document's columns and the version's (see job_version).
_NOT_POLLED = ("payload", "traceback", "call", "idempotency_key", "request_fingerprint", "task_id")
_POLL_FIELDS = [f.attname for f in Job._meta.concrete_fields if f.name not in _NOT_POLLED]
_JSON_FIELDS = {f.attname: f for f in Job._meta.concrete_fields if f.get_internal_type() == "JSONField"}
_TIME_FIELDS = {f.attname for f in Job._meta.concrete_fields if f.get_internal_type() == "DateTimeField"}
_POLL_INDEX = {name: i for i, name in enumerate(_POLL_FIELDS)}
# Times come as text, parsed only when the Job is built: a 304 needs none.
_POLL_SQL = "SELECT {}, {} FROM jobs_job WHERE id = %s AND owner_id = %s".format(
    ", ".join(
        connection.ops.quote_name(Job._meta.get_field(name).column) + ("::text" if name in _TIME_FIELDS else "")
        for name in _POLL_FIELDS
    ),
    _version_sql(),
)


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


def job_id_range(prefix: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """The lowest and highest job ids that start with ``prefix`` (8 to 32 hex digits, dashes allowed).

    None when ``prefix`` is not such a start. UUIDs sort by their hex digits on
    every backend, so ``pk BETWEEN low AND high`` finds a short id by the
    primary key's index instead of a LIKE over the whole table.
    """
    digits = prefix.strip().replace("-", "").lower()
    if not 8 <= len(digits) <= 32 or any(digit not in "0123456789abcdef" for digit in digits):
        return None
    padding = 32 - len(digits)
    return uuid.UUID(digits + "0" * padding), uuid.UUID(digits + "f" * padding)


def waiting_since() -> Coalesce:
    """When a pending job became due: the end of its retry's backoff, else when it last became pending.

    A pending job's ``updated_at`` is when it became pending: submitted,
    retried by staff, or queued again after losing its worker (nothing else
    writes a pending row). Its age counts from there, not from its creation.
    """
    return Coalesce("available_at", "updated_at")


def oldest_waiting_since(now: datetime | None = None) -> datetime | None:
    """When the due pending job that has waited longest became due; None if no job waits."""
    now = now or timezone.now()
    due = Job.objects.pending().filter(Q(available_at__isnull=True) | Q(available_at__lte=now))
    return due.order_by().aggregate(since=Min(waiting_since()))["since"]


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
