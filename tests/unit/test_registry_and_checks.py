"""jobs.registry (@job, get_kind, policies) and the jobs system checks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import checks as django_checks
from django.test import override_settings

from jobs import registry
from jobs.checks import check_cluster_settings
from jobs.exceptions import UnknownJobKind
from jobs.registry import get_kind, job, ttl_for
from tests.support import handlers


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry, so kinds registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))
    return registry._registry


def first(ctx, payload):
    return 1


def second(ctx, payload):
    return 2


def test_a_kind_is_registered_with_its_policies(scratch_registry):
    job("tests.scratch", timeout=timedelta(minutes=2), max_attempts=5, ttl=timedelta(hours=1))(first)

    kind = get_kind("tests.scratch")
    assert kind.handler is first
    assert (kind.timeout, kind.max_attempts, kind.ttl) == (120, 5, timedelta(hours=1))


@override_settings(JOBS={"DEFAULT_TIMEOUT": 11, "DEFAULT_MAX_ATTEMPTS": 7, "DEFAULT_TTL": 99})
def test_policies_left_out_fall_back_to_the_settings(scratch_registry):
    job("tests.scratch")(first)

    kind = get_kind("tests.scratch")
    assert (kind.timeout, kind.max_attempts, kind.ttl) == (11, 7, timedelta(seconds=99))
    assert ttl_for("tests.no_such_kind") == timedelta(seconds=99)


def test_the_decorator_returns_the_handler_unchanged(scratch_registry):
    assert job("tests.scratch")(first) is first


def test_a_second_function_under_the_same_name_is_rejected(scratch_registry):
    job("tests.scratch")(first)

    with pytest.raises(ValueError, match="already registered"):
        job("tests.scratch")(second)

    assert get_kind("tests.scratch").handler is first


def test_registering_the_same_function_again_is_allowed(scratch_registry):
    job("tests.scratch")(first)
    job("tests.scratch", max_attempts=4)(first)
    assert get_kind("tests.scratch").max_attempts == 4


def test_the_test_kinds_cannot_be_hijacked():
    with pytest.raises(ValueError):
        job("tests.noop")(second)
    assert get_kind("tests.noop").handler is handlers.noop


@pytest.mark.parametrize("max_attempts", [0, -1])
def test_max_attempts_below_one_is_rejected(max_attempts, scratch_registry):
    with pytest.raises(ValueError, match="max_attempts"):
        job("tests.scratch", max_attempts=max_attempts)
    assert "tests.scratch" not in scratch_registry


@pytest.mark.parametrize("name", ["", "x" * 101])
def test_a_kind_needs_a_reasonable_name(name, scratch_registry):
    with pytest.raises(ValueError):
        job(name)


def test_an_unknown_kind_raises_unknown_job_kind():
    with pytest.raises(UnknownJobKind) as excinfo:
        get_kind("tests.no_such_kind")
    assert excinfo.value.code == "unknown_kind"
    assert "tests.no_such_kind" in excinfo.value.message


def test_all_kinds_lists_every_kind_sorted():
    names = [kind.name for kind in registry.all_kinds()]
    assert names == sorted(names)
    assert {"purchases.execute", "tests.noop", "tests.boom"} <= set(names)


# --- System checks --------------------------------------------------------


def _ids(errors) -> list[str]:
    return [error.id for error in errors]


def test_the_project_settings_pass_the_checks():
    assert check_cluster_settings() == []


def test_the_checks_are_registered_with_django():
    assert check_cluster_settings in django_checks.registry.registry.get_checks()


def test_a_retry_not_above_the_longest_timeout_is_an_error():
    cluster = {**settings.Q_CLUSTER, "retry": 100}
    with override_settings(Q_CLUSTER=cluster):
        errors = check_cluster_settings()

    # purchases.execute has a 120 s timeout; 100 s is not above 120 + 30.
    assert "jobs.E001" in _ids(errors)
    assert any("'purchases.execute'" in error.msg for error in errors)
    assert "jobs.E002" not in _ids(errors)


def test_a_retry_within_the_margin_is_an_error(scratch_registry):
    job("tests.scratch", timeout=300)(first)
    # 300 s timeout + 10 s kill margin + 30 s margin.
    cluster = {**settings.Q_CLUSTER, "retry": 340}
    with override_settings(Q_CLUSTER=cluster):
        errors = check_cluster_settings()
    assert [e.id for e in errors if "'tests.scratch'" in e.msg] == ["jobs.E001"]
    with override_settings(Q_CLUSTER={**cluster, "retry": 341}):
        assert check_cluster_settings() == []


def test_unlimited_django_q_redelivery_is_an_error():
    cluster = {**settings.Q_CLUSTER, "max_attempts": 0}
    with override_settings(Q_CLUSTER=cluster):
        assert _ids(check_cluster_settings()) == ["jobs.E002"]

    without = {key: value for key, value in settings.Q_CLUSTER.items() if key != "max_attempts"}
    with override_settings(Q_CLUSTER=without):
        assert _ids(check_cluster_settings()) == ["jobs.E002"]


@pytest.mark.django_db  # the hook runs in a savepoint
def test_a_failing_abandon_hook_is_logged_not_raised(caplog):
    import uuid

    from jobs.registry import job as register, run_abandon_hook

    calls = []

    def broken_hook(job_id, status):
        calls.append((job_id, status))
        raise RuntimeError("cleanup failed")

    register("tests.abandon-hook", on_abandon=broken_hook)(lambda ctx, payload: None)
    job_id = uuid.uuid4()

    run_abandon_hook("tests.abandon-hook", job_id, "cancelled")
    run_abandon_hook("tests.no-such-kind", job_id, "cancelled")

    assert calls == [(job_id, "cancelled")]
    assert "on_abandon hook of tests.abandon-hook failed" in caplog.text
