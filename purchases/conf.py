"""The purchases app's settings, read lazily from ``settings.PURCHASES``."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Seconds the simulated payment provider takes to answer.
    "PAYMENT_DELAY": 2.0,
    # Seconds a purchase job may run (read once, when its handler is registered).
    "TIMEOUT": 120,
    "CURRENCY": "EUR",
    # Input limits: beyond these a purchase is rejected with 400.
    "MAX_QUANTITY": 1000,
    "MAX_LINES": 50,
    # Seconds of artificial work in the sales report, to show its progress.
    "REPORT_DELAY": 0.0,
    # Seconds a sales report job may run.
    "REPORT_TIMEOUT": 60,
}


def purchases_setting(name: str) -> Any:
    """Return ``settings.PURCHASES[name]`` or its default."""
    return getattr(settings, "PURCHASES", {}).get(name, DEFAULTS[name])
