"""The registry of job kinds: ``@job("app.action", input=Serializer, ...)``."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from jobs.conf import jobs_settings
from jobs.exceptions import UnknownJobKind

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from rest_framework.serializers import BaseSerializer

    from jobs.context import JobContext

Handler = Callable[["JobContext", dict[str, Any]], Any]


@dataclass(frozen=True)
class Completed:
    """What an ``on_abandon`` hook returns when the work turns out to be done.

    The engine was about to end the job without completing it (its worker
    was lost, it timed out, it was cancelled), but the hook found that the
    handler had already done what matters (say, the payment was taken): the
    job then ends ``completed`` with ``result``, so that its outcome matches
    the world.
    """

    result: Any = None


AbandonHook = Callable[[uuid.UUID, str], "Completed | None"]


@dataclass(frozen=True)
class OptionLimits:
    """Bounds a kind sets on what clients may choose in ``Job-Options`` (``jobs.options``).

    ``None`` falls back to the ``JOBS`` settings (``OPTION_*``) at access
    time; ``timeout_max`` to the kind's own timeout (a client may shorten a
    job's time limit, never lengthen it). ``allowed`` lists the options the
    kind accepts (default: all).
    """

    timeout_max: int | None = None
    ttl_min: int | None = None
    ttl_max: int | None = None
    priority_max: int | None = None
    run_at_max: int | None = None
    allowed: frozenset[str] | None = None


@dataclass(frozen=True)
class JobKind:
    """A registered kind of job: its handler, input serializer and policies.

    ``None`` policies fall back to the ``JOBS`` settings at access time.
    """

    name: str
    handler: Handler
    input: type[BaseSerializer] | None = None
    timeout_seconds: int | None = None
    max_attempts_value: int | None = None
    ttl_seconds: int | None = None
    on_abandon: AbandonHook | None = None
    # May the owner run a failed or cancelled job again (POST .../retry/)?
    retryable: bool = False
    # Scheduling (jobs/scheduling.py): the execution queue, the default
    # priority, and how many jobs of this kind one owner may have running.
    queue: str = "default"
    priority: int = 0
    per_owner_limit: int | None = None
    per_owner_message: str = ""
    #: Bounds on the client's Job-Options (jobs/options.py).
    option_limits: OptionLimits = OptionLimits()

    @property
    def timeout(self) -> int:
        """Seconds a run may take before django-q2 stops its worker."""
        return self.timeout_seconds or jobs_settings.DEFAULT_TIMEOUT

    @property
    def lease(self) -> timedelta:
        """How long a worker holds a processing job without reporting progress."""
        # The lease must outlast django-q2's kill (timeout + kill margin + its
        # 3 s guard buffer), or the reaper would hand a still-running job to
        # a second worker.
        grace = max(jobs_settings.LEASE_GRACE, jobs_settings.KILL_MARGIN + 5)
        return timedelta(seconds=self.timeout + grace)

    @property
    def queue_timeout(self) -> int:
        """Seconds after which django-q2 kills the worker: the job's timeout plus a margin."""
        return self.timeout + jobs_settings.KILL_MARGIN

    @property
    def max_attempts(self) -> int:
        """How many times the job may run before it fails for good."""
        return self.max_attempts_value or jobs_settings.DEFAULT_MAX_ATTEMPTS

    @property
    def ttl(self) -> timedelta:
        """How long a finished job is kept before it expires."""
        seconds = self.ttl_seconds if self.ttl_seconds is not None else jobs_settings.DEFAULT_TTL
        return timedelta(seconds=seconds)


@dataclass(frozen=True)
class ActionResponse:
    """What a handler returns to finish its job as an HTTP answer: status and body.

    The job stores ``body`` as its ``result`` and ``status`` as its
    ``result_status``; a status outside 2xx fails the job.
    """

    status: int
    body: Any


_registry: dict[str, JobKind] = {}

# A job's priority is a PostgreSQL smallint.
PRIORITY_MIN, PRIORITY_MAX = -32768, 32767


def _seconds(value: int | float | timedelta | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return int(value.total_seconds())
    return int(value)


def job(
    name: str,
    *,
    input: type[BaseSerializer] | None = None,  # noqa: A002 - the documented keyword
    timeout: int | timedelta | None = None,
    max_attempts: int | None = None,
    ttl: int | timedelta | None = None,
    on_abandon: AbandonHook | None = None,
    retryable: bool = False,
    queue: str = "default",
    priority: int = 0,
    per_owner_limit: int | None = None,
    per_owner_message: str = "",
    option_limits: OptionLimits | None = None,
) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, payload) -> result`` as the job kind ``name``.

    ``input`` validates payloads when jobs are submitted; ``timeout``,
    ``max_attempts`` and ``ttl`` override the defaults in ``settings.JOBS``.

    ``on_abandon(job_id, status)`` settles a partial run when the job is
    about to end without its handler deciding so: cancelled (also while
    waiting for a retry), timed out, failed after unexpected errors, or its
    worker lost on the last attempt. It either undoes the run and returns
    None (the job ends ``status``), or finds the work done and returns
    ``Completed(result)`` (the job ends completed). It runs exactly once per
    job, in the transaction that ends the job, with the job's row locked. It
    is not called for a ``JobError``, which the handler raised knowingly.

    ``retryable=True`` lets the owner of a failed or cancelled job run it
    again (``POST /api/jobs/{id}/retry/``): declare it only where running
    the handler again on the same payload is safe (a report, not a payment).

    ``queue`` names the execution queue (its concurrency limit is the
    ``QUEUE_LIMITS`` setting's), ``priority`` is the jobs' default priority
    (higher first), ``per_owner_limit`` caps how many jobs of this kind one
    owner has running at once (the others wait, pending, with the progress
    message ``per_owner_message``, e.g. "Waiting: you have a report running").
    ``option_limits`` bounds what clients may choose in ``Job-Options``.
    """
    if not name or len(name) > 100:
        raise ValueError("A job kind needs a name of 1 to 100 characters.")
    if not queue or len(queue) > 100:
        raise ValueError("A queue needs a name of 1 to 100 characters.")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must lie between {PRIORITY_MIN} and {PRIORITY_MAX}.")
    if per_owner_limit is not None and per_owner_limit < 1:
        raise ValueError("per_owner_limit must be at least 1.")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1.")

    def decorator(handler: Handler) -> Handler:
        existing = _registry.get(name)
        if existing and _qualname(existing.handler) != _qualname(handler):
            raise ValueError(
                f"Job kind {name!r} is already registered by {_qualname(existing.handler)}."
            )
        _registry[name] = JobKind(
            name=name,
            handler=handler,
            input=input,
            timeout_seconds=_seconds(timeout),
            max_attempts_value=max_attempts,
            ttl_seconds=_seconds(ttl),
            on_abandon=on_abandon,
            retryable=retryable,
            queue=queue,
            priority=priority,
            per_owner_limit=per_owner_limit,
            per_owner_message=per_owner_message[:255],
            option_limits=option_limits or OptionLimits(),
        )
        return handler

    return decorator


def _qualname(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def get_kind(name: str) -> JobKind:
    """Return the registered kind ``name`` or raise ``UnknownJobKind``."""
    if name not in _registry:
        _load_views()
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJobKind(f"No job handler is registered under {name!r}.") from None


def _load_views() -> None:
    # Job-capable API actions (@runs_as_job) register their kinds when their
    # views module is imported: importing the URLconf imports every view.
    # Not at start-up (an AppConfig.ready() importing the URLconf could build
    # the admin's URLs before every app registered its models), but the first
    # time anyone asks for a kind, as Django's own URL checks do.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imported for its side effect


def all_kinds() -> list[JobKind]:
    """Return every registered kind, sorted by name; the same in every process.

    Kinds of job-capable endpoints are registered when their views are
    imported, so this imports the URLconf first (cached after the first call).
    """
    _load_views()
    return sorted(_registry.values(), key=lambda kind: kind.name)


def ttl_for(name: str) -> timedelta:
    """Return how long finished jobs of kind ``name`` are kept (the default if unknown)."""
    try:
        return get_kind(name).ttl
    except UnknownJobKind:
        return timedelta(seconds=jobs_settings.DEFAULT_TTL)


def run_abandon_hook(name: str, job_id: uuid.UUID, status: str) -> Completed | None:
    """Call the kind's ``on_abandon`` hook; return its ``Completed``, if any. Never raises.

    The hook runs in a savepoint: if it fails, its writes are undone, the
    error is logged, and the job ends ``status``.
    """
    from django.db import transaction

    try:
        hook = get_kind(name).on_abandon
    except UnknownJobKind:
        return None
    if hook is None:
        return None
    try:
        with transaction.atomic():
            decision = hook(job_id, status)
    except Exception:
        logger.exception("on_abandon hook of %s failed for job %s", name, job_id)
        return None
    return decision if isinstance(decision, Completed) else None
