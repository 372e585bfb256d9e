"""Per-user throttles for polling and submitting jobs."""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle


class JobsRateThrottle(ScopedRateThrottle):
    """DRF's scoped throttle, counted per fixed window, with rates read at request time.

    DRF's own keeps every request's time in a list per user and stores the
    whole list back in the cache at each request: at 1,200 polls a minute
    that is a list of up to 1,200 floats pickled twice per poll, a tenth of
    a poll's CPU, and two clients racing can both slip through. This one
    keeps one counter per user and window (``cache.add`` then ``cache.incr``,
    atomic on Redis and within a process on the local-memory cache). The
    price: at a window's edge a client may send up to twice the rate in one
    window's length. ``Retry-After`` is the time left in the window.

    DRF copies ``DEFAULT_THROTTLE_RATES`` into a class attribute at import;
    reading it per request lets settings (and ``override_settings``) apply.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        """True while this user's requests in the current window are within the rate."""
        # A long poll re-reads the job after each change it hears of; only
        # the request itself counts against the rate.
        if getattr(request._request, "_jobs_recheck", False):
            return True
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        counter = f"{self.key}:w{window}"
        if self.cache.add(counter, 1, self.duration + 1):
            return self.num_requests >= 1
        try:
            count = self.cache.incr(counter)
        except ValueError:
            # It expired between add and incr: this request opens the window.
            self.cache.set(counter, 1, self.duration + 1)
            count = 1
        return count <= self.num_requests

    def wait(self) -> float:
        """Seconds until the current window ends (the ``Retry-After``)."""
        return max(0.0, self.window_ends - self.now)

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # noqa: N802 - DRF's attribute name
        return api_settings.DEFAULT_THROTTLE_RATES
