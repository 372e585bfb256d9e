"""Argument types (argparse `type=` callables) shared by the jobs management commands."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from jobs.models import Job
from jobs.registry import all_kinds

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# At most 12 digits: a longer number is no duration anyone means, and never
# reaches int() (which refuses over 4300 digits with a confusing message).
DURATION = re.compile(r"^\s*(\d{1,12})\s*([smhdw])\s*$")
# Jobs are at most decades old; beyond this "now - duration" leaves the
# years datetime can hold (year 1) and the command would crash.
MAX_DURATION = timedelta(days=36500)


def duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d`` or ``1w`` into a timedelta of at most 100 years (argparse type)."""
    match = DURATION.match(text or "")
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a duration: use a number and a unit, e.g. 30m, 2h, 7d."
        )
    number, unit = int(match.group(1)), match.group(2)
    # Compare in seconds before building the timedelta, which would overflow first.
    if number * UNIT_SECONDS[unit] > MAX_DURATION.total_seconds():
        raise argparse.ArgumentTypeError(
            f"{text!r} is too long: use at most 100 years ({MAX_DURATION.days}d)."
        )
    return timedelta(**{UNITS[unit]: number})


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1.")
    return value


def job_kind(text: str) -> str:
    """Accept a registered kind, or one that jobs in the database still have (argparse type).

    A typo is an error (exit 2) rather than a filter that matches nothing;
    kinds no longer registered stay usable so their old jobs can be purged.
    """
    registered = {kind.name for kind in all_kinds()}
    if text in registered or Job.objects.filter(kind=text).exists():
        return text
    known = ", ".join(sorted(registered)) or "none"
    raise argparse.ArgumentTypeError(f"{text[:100]!r} is not a job kind. Registered kinds: {known}.")
