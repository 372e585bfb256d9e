"""Per-user throttles for polling and submitting jobs."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class JobsRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, with rates read at request time.

    DRF copies ``DEFAULT_THROTTLE_RATES`` into a class attribute at import;
    reading it per request lets settings (and ``override_settings``) apply.
    """

    def allow_request(self, request, view) -> bool:
        # A long poll re-reads the job after each change it hears of; only
        # the request itself counts against the rate.
        if getattr(request._request, "_jobs_recheck", False):
            return True
        return super().allow_request(request, view)

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # noqa: N802 - DRF's attribute name
        return api_settings.DEFAULT_THROTTLE_RATES
