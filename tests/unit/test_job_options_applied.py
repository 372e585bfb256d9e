"""What a job's applied options change where it runs and ends: its time limit and its TTL."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from jobs.exceptions import InvalidJobOptions
from jobs.models import JobStatus
from jobs.options import job_options_parse
from jobs.registry import OptionLimits, get_kind, job
from jobs.runner import run_job
from jobs.services import job_cancel
from tests.support import handlers

pytestmark = pytest.mark.django_db


def test_the_timeout_option_shortens_the_time_limit(make_job, monkeypatch):
    def slow(ctx, payload):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # interrupted by the 1 s alarm
            time.sleep(0.05)
        return "too late"

    monkeypatch.setattr(handlers, "CALLBACK", slow)
    job = make_job("tests.call", options={"timeout": 1})
    started = time.monotonic()
    assert run_job(str(job.pk)) == JobStatus.FAILED
    assert time.monotonic() - started < 4
    job.refresh_from_db()
    assert job.error["code"] == "timeout"
    assert "1 s limit" in job.error["message"]


def test_the_ttl_option_sets_when_a_finished_job_expires(make_job):
    job = make_job("tests.noop", options={"ttl": 600})
    assert run_job(str(job.pk)) == JobStatus.COMPLETED
    job.refresh_from_db()
    assert job.expires_at - job.finished_at == timedelta(seconds=600)


def test_the_ttl_option_holds_for_a_job_ended_without_its_handler(make_job, user):
    job = make_job("tests.noop", options={"ttl": 90})
    job_cancel(job=job, actor="test")
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.expires_at - job.finished_at == timedelta(seconds=90)


def test_without_options_the_kinds_ttl_holds(make_job):
    job = make_job("tests.noop")
    run_job(str(job.pk))
    job.refresh_from_db()
    assert job.expires_at - job.finished_at == get_kind("tests.noop").ttl


@job("tests.bounded", option_limits=OptionLimits(ttl_min=10, ttl_max=20, allowed=frozenset({"ttl"})))
def bounded(ctx, payload):
    return None


def test_a_kind_declares_its_own_bounds(user):
    kind = get_kind("tests.bounded")
    assert job_options_parse("ttl=15", kind=kind, owner=user).applied == {"ttl": 15}
    with pytest.raises(InvalidJobOptions, match="from 10 to 20"):
        job_options_parse("ttl=21", kind=kind, owner=user)
    with pytest.raises(InvalidJobOptions, match="tests.bounded accepts: ttl"):
        job_options_parse("timeout=1", kind=kind, owner=user)
