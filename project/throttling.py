"""Limits on password guessing: per client address, and per username on failures.

Two DRF throttles guard ``POST /api/auth/token/``; ``limit_login_attempts``
puts the same two in front of the HTML login forms (the admin's and the demo
shop's). Both share their counters, so guesses for ``admin`` through the API
and through the admin count together.

* ``auth.address``: every sign-in attempt from one client address (default
  30/min), so one machine cannot try many usernames.
* ``auth.username``: failed attempts for one username (default 10/min), from
  any address, so a botnet cannot try many passwords on one account. Only
  failures count: a user signing in successfully is never locked out by it.

A throttled attempt is refused before the password is looked at: it costs a
cache read, not a password hash. Counters live in Django's cache (see
``CACHES`` in settings: shared between processes only with Redis).
"""

from __future__ import annotations

import functools
import hashlib
import math
import unicodedata
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions, status

from jobs.api.throttling import RequestTimeRateThrottle

# Used when REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] does not name the scope, so
# a project that overrides the rates cannot switch the brake off by accident.
DEFAULT_RATES: dict[str, str] = {"auth.address": "30/min", "auth.username": "10/min"}


class _LoginThrottle(RequestTimeRateThrottle):
    """A throttle whose rates are read at request time, with defaults for its scopes.

    Counted as DRF counts (a list of recent attempts per key), not per fixed
    window like the jobs throttles (``FixedWindowThrottle``): no double burst
    at a window's edge, at the price of DRF's race (parallel attempts may all
    read the list before any of them is stored).
    """

    default_rates = DEFAULT_RATES


class LoginAddressThrottle(_LoginThrottle):
    """Every sign-in attempt from one client address (``auth.address``)."""

    scope = "auth.address"

    def get_cache_key(self, request: Any, view: Any) -> str:
        # get_ident follows NUM_PROXIES for X-Forwarded-For (0 in settings:
        # trust REMOTE_ADDR only, or a client could name a new address each time).
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginFailureThrottle(_LoginThrottle):
    """Failed sign-ins for one username, from any address (``auth.username``).

    ``allow_request`` only reads the count; ``record_failure`` adds to it,
    once the password turned out wrong.
    """

    scope = "auth.username"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        username = posted_username(request)
        if username is None:
            return None
        # Hashed: the cache never holds what someone typed as a username
        # (sometimes a password, typed into the wrong field).
        digest = hashlib.sha256(username.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def allow_request(self, request: Any, view: Any) -> bool:
        """Allow the attempt unless the username has used up its failures; count nothing."""
        if not self.prepare(request, view):
            return True
        self.history = self._recent(self.cache.get(self.key, []))
        return len(self.history) < self.num_requests

    def record_failure(self, request: Any, view: Any = None) -> None:
        """Count a failed sign-in against the posted username."""
        if not self.prepare(request, view):
            return
        # Read again: the password check took a while and other attempts
        # may have failed meanwhile. (Like DRF's own throttles this is not
        # atomic; parallel failures can lose a count, never block a user.)
        history = self._recent(self.cache.get(self.key, []))
        history.insert(0, self.now)
        self.cache.set(self.key, history, self.duration)

    def wait(self) -> float:
        """Seconds until the oldest failure that keeps the username over its limit expires."""
        # Newest first: once the num_requests-th newest has expired, fewer
        # than num_requests remain. (DRF's wait() spreads the budget instead.)
        return max(0.0, self.history[self.num_requests - 1] + self.duration - self.now)

    def _recent(self, history: list[float]) -> list[float]:
        return [moment for moment in history if moment > self.now - self.duration]


LOGIN_THROTTLES: tuple[type[_LoginThrottle], ...] = (LoginAddressThrottle, LoginFailureThrottle)


def posted_username(request: Any) -> str | None:
    """The username a sign-in request posts, normalised as a lookup would see it; None if absent."""
    data = getattr(request, "data", None)
    if data is None:  # A plain Django request (the HTML forms).
        data = request.POST
    if not hasattr(data, "get"):
        return None  # A JSON list or scalar: the serializer will refuse it.
    value = data.get("username")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    # As Django normalises usernames (NFKC) and DRF trims them; casefolded so
    # "Admin" and "admin" share one budget.
    username = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    return username or None


class LoginThrottled(exceptions.Throttled):
    """429 for a sign-in refused by a throttle: ``detail``, ``code`` and ``Retry-After``."""

    def __init__(self, wait: float | None) -> None:
        self.wait = retry_after(wait)
        detail = f"Too many sign-in attempts. Try again in {self.wait} seconds."
        # A dict detail is the response body as it is (DRF's handler would
        # otherwise give only "detail"); DRF adds Retry-After from `wait`.
        exceptions.APIException.__init__(self, {"detail": detail, "code": "throttled"}, "throttled")


def retry_after(wait: float | None) -> int:
    """Whole seconds to wait, at least 1 (a 0 would invite an immediate retry)."""
    return max(1, math.ceil(wait or 1))


def throttle_wait(request: Any, view: Any = None) -> float | None:
    """Seconds until the sign-in throttles let ``request`` in, or None if they do now."""
    waits = []
    for throttle_class in LOGIN_THROTTLES:
        throttle = throttle_class()
        if not throttle.allow_request(request, view):
            waits.append(throttle.wait() or 1)
    return max(waits) if waits else None


def limit_login_attempts(login_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Wrap an HTML login view (Django's ``LoginView``) in the sign-in throttles.

    A POST over either limit gets a short 429 page with ``Retry-After`` and
    the password is not checked; a POST that does not sign in (the form is
    shown again) counts as a failure for its username.
    """

    @functools.wraps(login_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return login_view(request, *args, **kwargs)
        wait = throttle_wait(request)
        if wait is not None:
            seconds = retry_after(wait)
            response = HttpResponse(
                "<!doctype html><title>Too many sign-in attempts</title>"
                f"<h1>Too many sign-in attempts</h1><p>Try again in {seconds} seconds.</p>",
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
            response["Retry-After"] = str(seconds)
            return response
        response = login_view(request, *args, **kwargs)
        # LoginView redirects on success; anything else (the form with its
        # error, a CSRF refusal) did not sign anyone in.
        if not 300 <= response.status_code < 400:
            LoginFailureThrottle().record_failure(request)
        return response

    return view
