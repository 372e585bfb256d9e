"""The shared throttle bases: rates read per request with defaults, and the fixed-window counter."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.test import override_settings

from jobs.api.throttling import FixedWindowThrottle, RequestTimeRateThrottle


class ThreeAMinute(FixedWindowThrottle):
    """One shared key, three requests a minute, on a clock the test sets."""

    rate = "3/min"
    clock = 0.0

    def get_cache_key(self, request: Any, view: Any) -> str:
        return "test-fixed-window"

    def timer(self) -> float:
        return self.clock


def attempt(at: float) -> ThreeAMinute:
    """Ask a fresh throttle (DRF makes one per request) at time ``at``; it keeps its answer in ``allowed``."""
    throttle = ThreeAMinute()
    throttle.clock = at
    throttle.allowed = throttle.allow_request(None, None)
    return throttle


def test_a_window_allows_its_rate_then_waits_for_its_end():
    answers = [attempt(at).allowed for at in (600.0, 610.0, 620.0)]
    refused = attempt(635.5)

    assert answers == [True, True, True]
    assert refused.allowed is False
    assert refused.wait() == 660.0 - 635.5


def test_the_next_window_starts_a_fresh_count():
    for at in (600.0, 601.0, 602.0, 603.0):
        attempt(at)
    assert attempt(660.0).allowed is True


def test_no_rate_allows_everything():
    class Unlimited(ThreeAMinute):
        rate = None
        scope = "test.unlimited"
        default_rates = {"test.unlimited": None}

    throttle = Unlimited()
    throttle.clock = 1.0
    assert all(throttle.allow_request(None, None) for _ in range(10))


class Scoped(RequestTimeRateThrottle):
    scope = "test.scoped"
    default_rates = {"test.scoped": "5/min"}

    def get_cache_key(self, request: Any, view: Any) -> str:
        return "test-scoped"


def test_default_rates_fill_in_for_scopes_the_settings_do_not_name():
    assert "test.scoped" not in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert (Scoped().num_requests, Scoped().duration) == (5, 60)


def test_rates_are_read_when_the_throttle_is_made_so_settings_overrides_apply():
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "test.scoped": "2/hour"}
    with override_settings(REST_FRAMEWORK=rest):
        assert (Scoped().num_requests, Scoped().duration) == (2, 3600)
    assert Scoped().num_requests == 5


def test_a_counter_this_process_opened_costs_one_cache_call_and_survives_a_cleared_cache():
    from unittest import mock

    from django.core.cache import cache

    cache.clear()
    attempt(1200.0)
    with mock.patch.object(cache, "add", wraps=cache.add) as add:
        assert attempt(1201.0).allowed is True
    assert add.call_count == 0  # the window was opened here: incr alone

    cache.clear()  # the counter is gone (evicted, or a test's clean slate)
    answers = [attempt(at).allowed for at in (1202.0, 1203.0, 1204.0, 1205.0)]
    assert answers == [True, True, True, False]  # counted afresh from 1, not lost or doubled
