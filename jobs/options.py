"""Job options a client may choose (the ``Job-Options`` header), within bounds the kind sets.

``Job-Options: timeout=30, ttl=3600, priority=10, run-at="2026-12-01T09:00:00Z",
callback="https://example.com/hooks/jobs"`` is an RFC 9651 dictionary. Each
option is checked against the kind's ``OptionLimits`` (defaults in the
``JOBS`` settings); anything wrong raises ``InvalidJobOptions`` (a 400 that
names the bound) before a job is stored. What was applied is kept on the
job (``Job.options``) and shown in its document.

- ``timeout``: seconds the job may run, 1 up to the kind's own timeout.
- ``ttl``: seconds the finished job is kept.
- ``priority``: within the job's queue, higher first; ordinary users up to
  a ceiling, staff up to the column's maximum.
- ``run-at``: an RFC 3339 time (a string) or a date item (``@seconds``);
  the job does not start before it.
- ``callback``: an https URL told when the job ends (``jobs.webhooks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Callable

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from jobs.conf import jobs_settings
from jobs.exceptions import InvalidJobOptions, WebhookDestinationRefused
from jobs.registry import PRIORITY_MAX, PRIORITY_MIN, JobKind, ttl_for
from jobs.structured_fields import BareItem, Date, StructuredFieldError, Token, parse_dictionary

HEADER = "Job-Options"
MAX_HEADER_LENGTH = 2000
KNOWN = ("callback", "priority", "run-at", "timeout", "ttl")
# A client's clock may run a little behind ours.
RUN_AT_SKEW = timedelta(seconds=60)


@dataclass(frozen=True)
class JobOptions:
    """The options as applied: what the job stores and shows, and what ``submit`` takes."""

    applied: dict[str, Any] = field(default_factory=dict)
    priority: int | None = None
    run_at: datetime | None = None


def job_options_parse(header: str | None, *, kind: JobKind, owner: Any) -> JobOptions:
    """Check a ``Job-Options`` header for a job of ``kind`` by ``owner``; raise ``InvalidJobOptions``."""
    if header is None or not header.strip():
        return JobOptions()
    if len(header) > MAX_HEADER_LENGTH:
        raise InvalidJobOptions(f"{HEADER} is longer than {MAX_HEADER_LENGTH} characters.")
    try:
        members = parse_dictionary(header)
    except StructuredFieldError as exc:
        raise InvalidJobOptions(f"{HEADER} is not a structured-field dictionary (RFC 9651): {exc}.") from None
    allowed = kind.option_limits.allowed
    applied: dict[str, Any] = {}
    for key, value in members.items():
        if key not in KNOWN or (allowed is not None and key not in allowed):
            accepted = ", ".join(sorted(allowed if allowed is not None else KNOWN)) or "none"
            raise InvalidJobOptions(f"{HEADER}: unknown option {key!r}; {kind.name} accepts: {accepted}.")
        applied[key.replace("-", "_")] = _CHECKS[key](value, kind, owner)
    return JobOptions(applied=applied, priority=applied.get("priority"), run_at=_run_at(applied))


def job_timeout(kind: JobKind, options: dict[str, Any] | None) -> int:
    """Seconds a job may run: its ``timeout`` option, else its kind's."""
    return int((options or {}).get("timeout") or kind.timeout)


def job_ttl(kind: JobKind, options: dict[str, Any] | None) -> timedelta:
    """How long the finished job is kept: its ``ttl`` option, else its kind's."""
    ttl = (options or {}).get("ttl")
    return timedelta(seconds=ttl) if ttl else kind.ttl


def ttl_of(kind: str, options: dict[str, Any] | None) -> timedelta:
    """``job_ttl`` by the kind's name; the default TTL for a kind no longer registered."""
    ttl = (options or {}).get("ttl")
    return timedelta(seconds=ttl) if ttl else ttl_for(kind)


def _run_at(applied: dict[str, Any]) -> datetime | None:
    text = applied.get("run_at")
    return parse_datetime(text) if text else None


def _whole(key: str, value: BareItem, low: int, high: int, unit: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidJobOptions(f"{HEADER}: {key} must be a whole number{unit} from {low} to {high}.")
    return value


def _timeout(value: BareItem, kind: JobKind, owner: Any) -> int:
    high = kind.option_limits.timeout_max or kind.timeout
    return _whole("timeout", value, 1, high, f" of seconds (the limit of {kind.name})")


def _ttl(value: BareItem, kind: JobKind, owner: Any) -> int:
    limits = kind.option_limits
    low = limits.ttl_min if limits.ttl_min is not None else jobs_settings.OPTION_TTL_MIN
    high = limits.ttl_max if limits.ttl_max is not None else jobs_settings.OPTION_TTL_MAX
    return _whole("ttl", value, low, high, " of seconds")


def _priority(value: BareItem, kind: JobKind, owner: Any) -> int:
    if getattr(owner, "is_staff", False):
        return _whole("priority", value, PRIORITY_MIN, PRIORITY_MAX, "")
    limits = kind.option_limits
    ceiling = limits.priority_max if limits.priority_max is not None else jobs_settings.OPTION_PRIORITY_MAX
    return _whole("priority", value, PRIORITY_MIN, ceiling, "")


def _run_at_check(value: BareItem, kind: JobKind, owner: Any) -> str:
    limits = kind.option_limits
    ahead = limits.run_at_max if limits.run_at_max is not None else jobs_settings.OPTION_RUN_AT_MAX
    when: datetime | None = None
    if isinstance(value, Date):
        when = datetime.fromtimestamp(value.seconds, tz=UTC) if abs(value.seconds) < 2**37 else None
    elif isinstance(value, str) and not isinstance(value, Token):
        try:
            when = parse_datetime(value)
        except ValueError:
            when = None
    if when is None or when.tzinfo is None:
        raise InvalidJobOptions(
            f'{HEADER}: run-at must be an RFC 3339 time with its offset, as a string: run-at="2026-12-01T09:00:00Z".'
        )
    now = timezone.now()
    if not now - RUN_AT_SKEW <= when <= now + timedelta(seconds=ahead):
        raise InvalidJobOptions(f"{HEADER}: run-at must lie between now and {ahead} seconds ahead.")
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _callback(value: BareItem, kind: JobKind, owner: Any) -> str:
    from jobs.webhooks.services import webhook_destination_check

    if not isinstance(value, str) or isinstance(value, Token):
        raise InvalidJobOptions(f'{HEADER}: callback must be a URL in a string: callback="https://...".')
    try:
        return webhook_destination_check(owner=owner, url=value)
    except WebhookDestinationRefused as exc:
        raise WebhookDestinationRefused(f"{HEADER}: callback refused. {exc.message}") from None


_CHECKS: dict[str, Callable[[BareItem, JobKind, Any], Any]] = {
    "timeout": _timeout,
    "ttl": _ttl,
    "priority": _priority,
    "run-at": _run_at_check,
    "callback": _callback,
}
