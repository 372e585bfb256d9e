"""The registry of job kinds: ``@job("app.action", input=Serializer, ...)``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable

from jobs.conf import jobs_settings
from jobs.exceptions import UnknownJobKind

if TYPE_CHECKING:
    from rest_framework.serializers import BaseSerializer

    from jobs.context import JobContext

Handler = Callable[["JobContext", dict[str, Any]], Any]


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

    @property
    def timeout(self) -> int:
        """Seconds a run may take before django-q2 stops its worker."""
        return self.timeout_seconds or jobs_settings.DEFAULT_TIMEOUT

    @property
    def max_attempts(self) -> int:
        """How many times the job may run before it fails for good."""
        return self.max_attempts_value or jobs_settings.DEFAULT_MAX_ATTEMPTS

    @property
    def ttl(self) -> timedelta:
        """How long a finished job is kept before it expires."""
        seconds = self.ttl_seconds if self.ttl_seconds is not None else jobs_settings.DEFAULT_TTL
        return timedelta(seconds=seconds)


_registry: dict[str, JobKind] = {}


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
) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, payload) -> result`` as the job kind ``name``.

    ``input`` validates payloads when jobs are submitted; ``timeout``,
    ``max_attempts`` and ``ttl`` override the defaults in ``settings.JOBS``.
    """
    if not name or len(name) > 100:
        raise ValueError("A job kind needs a name of 1 to 100 characters.")
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
        )
        return handler

    return decorator


def _qualname(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def get_kind(name: str) -> JobKind:
    """Return the registered kind ``name`` or raise ``UnknownJobKind``."""
    try:
        return _registry[name]
    except KeyError:
        raise UnknownJobKind(f"No job handler is registered under {name!r}.") from None


def all_kinds() -> list[JobKind]:
    """Return every registered kind, sorted by name."""
    return sorted(_registry.values(), key=lambda kind: kind.name)


def ttl_for(name: str) -> timedelta:
    """Return how long finished jobs of kind ``name`` are kept (the default if unknown)."""
    try:
        return get_kind(name).ttl
    except UnknownJobKind:
        return timedelta(seconds=jobs_settings.DEFAULT_TTL)
