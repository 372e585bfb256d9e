"""Argument types shared by the jobs management commands."""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``2h``, ``7d`` or ``1w`` into a timedelta (argparse type)."""
    match = DURATION.match(text or "")
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number and a unit, e.g. 30m, 2h, 7d."
        )
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def positive_int(text: str) -> int:
    """Parse a whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1.")
    return value
