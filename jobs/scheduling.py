"""Queues, limits, priorities and delayed start: what decides when a pending job may start.

Each kind names an execution queue (``@job(queue=...)``, default
``default``); the ``QUEUE_LIMITS`` setting caps how many jobs of a queue run
at once over every cluster, and ``@job(per_owner_limit=...)`` how many jobs
of a kind one owner has running. A job that may not start yet stays
``pending`` with a progress message saying why. Deliveries (``jobs.delivery``)
skip such jobs and take the others in priority order; the claim
(``jobs.transitions.claim``) checks the limits again under a lock, so two
clusters never both start the last free place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from jobs.conf import jobs_settings
from jobs.registry import PRIORITY_MAX, PRIORITY_MIN, JobKind, all_kinds

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Plan:
    """How a new job is scheduled: its priority, start time and first progress message."""

    priority: int
    run_at: datetime | None
    available_at: datetime | None
    message: str


def plan(kind: JobKind, *, owner: Any, priority: int | None, run_at: datetime | None, now: datetime) -> Plan:
    """Check ``priority`` and ``run_at`` for a new job of ``kind``; raise ``ValueError`` if invalid."""
    if priority is None:
        priority = kind.priority
    if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must be a whole number between {PRIORITY_MIN} and {PRIORITY_MAX}.")
    if run_at is not None and (not isinstance(run_at, datetime) or run_at.tzinfo is None):
        raise ValueError("run_at must be a timezone-aware datetime.")
    delayed = run_at is not None and run_at > now
    message = f"Waiting: starts at {run_at.isoformat()}" if delayed else wait_reason(kind, owner_id=_pk(owner))
    return Plan(priority, run_at, run_at if delayed else None, message)


def _pk(owner: Any) -> Any:
    return getattr(owner, "pk", owner)


def queue_limits() -> dict[str, int]:
    """The ``QUEUE_LIMITS`` setting as {queue: limit}; ``ImproperlyConfigured`` if malformed."""
    limits: dict[str, int] = {}
    for item in jobs_settings.QUEUE_LIMITS:
        name, sep, number = str(item).partition("=")
        if not sep or not name.strip() or not number.strip().isdigit() or int(number) < 1:
            raise ImproperlyConfigured(
                f"JOBS['QUEUE_LIMITS'] items look like 'reports=2' (a queue and a limit of 1 or more), not {item!r}."
            )
        limits[name.strip()] = int(number)
    return limits


def owner_limits() -> dict[str, int]:
    """{kind: per-owner limit} for every registered kind that has one."""
    return {kind.name: kind.per_owner_limit for kind in all_kinds() if kind.per_owner_limit}


def is_limited(kind: JobKind) -> bool:
    """True if jobs of ``kind`` may have to wait for a place (queue or owner limit)."""
    return bool(kind.per_owner_limit) or kind.queue in queue_limits()


def wait_reason(kind: JobKind, *, owner_id: Any) -> str:
    """Why a job of ``kind`` for ``owner_id`` could not start now; "" if it could."""
    if not is_limited(kind):
        return ""
    from jobs.models import Job, JobStatus

    running = Job.objects.filter(status=JobStatus.PROCESSING)
    if kind.per_owner_limit and owner_id is not None:
        mine = running.filter(kind=kind.name, owner_id=owner_id).count()
        if mine >= kind.per_owner_limit:
            what = "one" if mine == 1 else str(mine)
            return f"Waiting: you have {what} of these running already"
    limit = queue_limits().get(kind.queue)
    if limit is not None and running.filter(queue=kind.queue).count() >= limit:
        return f"Waiting: the {kind.queue} queue is busy ({limit} running at most)"
    return ""
