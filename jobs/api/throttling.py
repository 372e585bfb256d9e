"""Per-user throttles for polling and submitting jobs, and the bases other throttles share.

``RequestTimeRateThrottle`` reads its rates per request; ``FixedWindowThrottle``
counts per fixed window on top of it; ``JobsRateThrottle`` is the scoped
throttle the jobs and purchases views use. A project's own throttles may
build on either base.
"""

from __future__ import annotations

from typing import Any

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle


# Window counters this process has opened or counted, so it knows the next
# request in the same window only has to increment (a bound, not an LRU:
# forgetting one costs a single extra cache call).
_opened: dict[str, None] = {}
_OPENED_MAX = 10_000


class RequestTimeRateThrottle(SimpleRateThrottle):
    """DRF's rate throttle with its rates read at request time.

    DRF copies ``DEFAULT_THROTTLE_RATES`` into a class attribute at import;
    reading it per request lets settings (and ``override_settings``) apply.
    ``default_rates`` stand in for scopes the settings do not name.
    """

    default_rates: dict[str, str] = {}

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # noqa: N802 - DRF's attribute name
        if not self.default_rates:
            return api_settings.DEFAULT_THROTTLE_RATES
        return {**self.default_rates, **api_settings.DEFAULT_THROTTLE_RATES}

    def prepare(self, request: Any, view: Any) -> bool:
        """Set ``key`` and ``now`` for ``request``; False when it is not counted (no rate, or no key)."""
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return False
        self.now = self.timer()
        return True


class FixedWindowThrottle(RequestTimeRateThrottle):
    """A rate throttle counted per fixed window.

    DRF's own keeps every request's time in a list per key and stores the
    whole list back in the cache at each request: at 1,200 polls a minute
    that is a list of up to 1,200 floats pickled twice per poll, a tenth of
    a poll's CPU, and two clients racing can both slip through. This one
    keeps one counter per key and window (``cache.add`` then ``cache.incr``,
    atomic on Redis and within a process on the local-memory cache). The
    price: at a window's edge a client may send up to twice the rate in one
    window's length. ``Retry-After`` is the time left in the window.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        """True while this key's requests in the current window are within the rate."""
        if not self.prepare(request, view):
            return True
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        counter = f"{self.key}:w{window}"
        if counter in _opened:
            # This process counted here before: one cache call, not two.
            try:
                return self.cache.incr(counter) <= self.num_requests
            except ValueError:
                pass  # gone (evicted, cleared): open it again below
        if len(_opened) >= _OPENED_MAX:
            _opened.clear()
        _opened[counter] = None
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


class JobsRateThrottle(ScopedRateThrottle, FixedWindowThrottle):
    """DRF's scoped throttle (the view's ``throttle_scope`` names the rate), per fixed window.

    DRF's ``ScopedRateThrottle.allow_request`` resolves the scope and its
    rate, then hands over to ``FixedWindowThrottle`` to count.
    """

    def allow_request(self, request: Any, view: Any) -> bool:
        """True while this user's requests in the current window are within the view's rate."""
        # A long poll re-reads the job after each change it hears of; only
        # the request itself counts against the rate.
        # (jobs.api.quick_poll hands in Django's own request, not DRF's.)
        if getattr(getattr(request, "_request", request), "_jobs_recheck", False):
            return True
        return super().allow_request(request, view)
