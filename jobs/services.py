"""Services that change jobs: submit, cancel, delete.

Keyword-only, typed, and free of HTTP: views and the admin call these.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs import queue, scheduling, transitions
from jobs.exceptions import IdempotencyKeyConflict, InvalidJobState, UnknownJobKind
from jobs.maintenance import jobs_bulk_retry
from jobs.models import Job, JobStatus, TombstoneReason
from jobs.registry import get_kind
from jobs.timeline import actor_for_user
from jobs.tombstones import tombstones_record

@dataclass(frozen=True)
class Submission:
    """The outcome of a submit: the job, and whether this call created it."""

    job: Job
    created: bool


def job_submit(
    *,
    kind: str,
    payload: Mapping[str, Any],
    owner: Any,
    idempotency_key: str | None = None,
    actor: str | None = None,
    serializer_class: Any = None,
    serializer_context: Mapping[str, Any] | None = None,
    call: Mapping[str, Any] | None = None,
    priority: int | None = None,
    run_at: datetime | None = None,
    options: Mapping[str, Any] | None = None,
) -> Submission:
    """Validate ``payload`` for ``kind``, store a pending job and enqueue it on commit.

    With an ``idempotency_key``, the same key and payload from the same owner
    returns the existing job; the same key with another payload raises
    ``IdempotencyKeyConflict``. Invalid payloads raise DRF's ``ValidationError``.

    ``serializer_class`` (default: the kind's ``input``) validates the payload,
    with ``serializer_context`` besides ``owner``; ``call`` describes the API
    request a job-capable action came from (see ``jobs.api.actions``).
    ``priority`` (default: the kind's) orders the job within its queue;
    ``run_at`` (an aware datetime) keeps it pending until then.
    ``options`` are the client's checked ``Job-Options`` (``jobs.options``), kept on the job.
    Apps call it as ``jobs.submit``, which returns the job alone.
    """
    job_kind = get_kind(kind)
    context = {"owner": owner, **(serializer_context or {})}
    data = _validated(serializer_class or job_kind.input, payload, context)
    fingerprint = _fingerprint(kind, data)

    if idempotency_key is not None:
        existing = _replay(owner, idempotency_key, fingerprint)
        if existing is not None:
            return Submission(existing, created=False)

    now = timezone.now()
    plan = scheduling.plan(job_kind, owner=owner, priority=priority, run_at=run_at, now=now)
    job = Job(
        queue=job_kind.queue,
        priority=plan.priority,
        run_at=plan.run_at,
        available_at=plan.available_at,
        progress_message=plan.message,
        kind=kind,
        owner=owner,
        payload=data,
        max_attempts=job_kind.max_attempts,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        call=dict(call or {}),
        options=dict(options or {}),
        created_at=now,
        updated_at=now,
        enqueued_at=(
            queue.retry_enqueued_at(plan.available_at) if plan.available_at else queue.initial_enqueued_at(now)
        ),
    )
    try:
        # One statement on PostgreSQL: the row, its "created" event and (with
        # the job table as the queue) the trigger that wakes the clusters.
        transitions.create(
            job, actor=actor or (actor_for_user(owner, via="user") if owner else "system")
        )
        transaction.on_commit(lambda: _send(job), robust=True)
    except IntegrityError:
        if idempotency_key is None:
            raise
        # Another request with the same key won the race; answer with its job.
        existing = _replay(owner, idempotency_key, fingerprint)
        if existing is None:
            raise
        return Submission(existing, created=False)
    return Submission(job, created=True)


def job_cancel(*, job: Job, actor: str = "") -> Job:
    """Cancel a pending job now, or ask a processing one to stop at its next progress call.

    Raises ``InvalidJobState`` for a job that has already finished.
    """
    # A pending job may have run before and be waiting for a retry: its
    # kind's on_abandon hook settles that run (see transitions.abandon).
    ended = transitions.cancel_pending(job.pk, kind=job.kind, actor=actor)
    requested = ended is not None or transitions.request_cancel(job, actor=actor)
    job.refresh_from_db()
    if not requested:
        raise InvalidJobState(
            f"The job is already {job.status} and can no longer be cancelled.",
            code="job_finished",
        )
    return job


def job_delete(*, job: Job) -> None:
    """Delete a finished job, leaving its tombstone; raise ``InvalidJobState`` while it is active."""
    finished = Job.objects.filter(pk=job.pk, status__in=JobStatus.terminal())
    with transaction.atomic():
        tombstones_record(finished, reason=TombstoneReason.DELETED)
        deleted, _ = finished.delete()
        if not deleted:
            # Raised inside the transaction: it takes back the tombstone too.
            raise InvalidJobState(
                "The job has not finished. Cancel it first, then delete it once it has stopped.",
                code="job_not_finished",
            )


def job_retry(*, job: Job, actor: str) -> Job:
    """Run a failed or cancelled job again, if its kind is ``retryable``: same id, back to pending.

    The staff's retry (``jobs_bulk_retry``) for one job: fresh attempts, a
    ``retried`` event naming ``actor`` on the timeline, enqueued on commit.
    Raises ``InvalidJobState``: ``retry_not_allowed`` for a kind that does not
    declare itself safe to run again, ``job_not_retryable`` for a job that
    is not failed or cancelled.
    """
    try:
        retryable = get_kind(job.kind).retryable
    except UnknownJobKind:
        retryable = False
    if not retryable:
        raise InvalidJobState(
            f"Jobs of kind {job.kind} cannot be retried: running one again could repeat what it "
            "did (a payment, say). Submit a new request instead.",
            code="retry_not_allowed",
        )
    result = jobs_bulk_retry(Job.objects.filter(pk=job.pk), actor=actor)
    if not result.changed:
        # The status seen under the row's lock, not the one read before.
        now_status = next(iter(result.skipped), job.status)
        raise InvalidJobState(
            f"Only failed or cancelled jobs can be retried; this one is {now_status}.",
            code="job_not_retryable",
        )
    job.refresh_from_db()
    return job


def _send(job: Job) -> None:
    # A delayed job waits in the table (or, on Redis, in a django-q2 schedule).
    if job.available_at is not None:
        queue.enqueue_at(job.pk, job.kind, job.available_at)
    else:
        queue.enqueue(job.pk, job.kind, new=True)


def _validated(
    serializer_class: Any, payload: Mapping[str, Any], context: dict[str, Any]
) -> dict[str, Any]:
    if serializer_class is None:
        data: Any = dict(payload)
    else:
        serializer = serializer_class(data=payload, context=context)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
    # What the handler gets is exactly what the JSON column gives back.
    try:
        return json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    except TypeError:
        # Validated data holding objects JSON cannot carry (model instances
        # from related fields): keep the input that passed validation, which
        # validates again to the same objects where the job runs.
        return json.loads(json.dumps(dict(payload), cls=DjangoJSONEncoder))


def _fingerprint(kind: str, data: dict[str, Any]) -> str:
    canonical = json.dumps([kind, data], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(owner: Any, key: str, fingerprint: str) -> Job | None:
    existing = Job.objects.filter(owner=owner, idempotency_key=key).first()
    if existing is not None and existing.request_fingerprint != fingerprint:
        raise IdempotencyKeyConflict(
            "This Idempotency-Key was already used with a different request. "
            "Use a new key for a new request, or resend the original body."
        )
    return existing
