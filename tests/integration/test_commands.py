"""manage.py purge_jobs, retry_jobs and jobs_stats: filters, dry runs, output and bad arguments."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command, load_command_class
from django.utils import timezone
from django_q.brokers import get_broker

from jobs import maintenance, queue
from jobs.models import Job, JobEvent, JobStatus
from tests.support.admin import make_job, status_of

pytestmark = pytest.mark.django_db
S = JobStatus


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def finished(status=S.COMPLETED, *, ago=timedelta(hours=1), expires_in=timedelta(days=1), **fields) -> Job:
    at = timezone.now() - ago
    return make_job(status=status, started_at=at, finished_at=at, expires_at=timezone.now() + expires_in, **fields)


def expired(status=S.COMPLETED, **fields) -> Job:
    return finished(status, expires_in=-timedelta(seconds=1), **fields)


def remaining() -> set:
    return set(Job.objects.values_list("pk", flat=True))


def run_from_command_line(capsys, *argv: str) -> tuple[int, str]:
    """Run a command as manage.py does (argparse exits on bad arguments); return exit status and stderr."""
    command = load_command_class("jobs", argv[0])
    with pytest.raises(SystemExit) as exit_info:
        command.run_from_argv(["manage.py", *argv])
    return exit_info.value.code, capsys.readouterr().err


@pytest.fixture
def unfinished_but_past_expiry():
    past = timezone.now() - timedelta(days=30)
    return [
        make_job(created_at=past, expires_at=past),
        make_job(status=S.PROCESSING, created_at=past, started_at=past, expires_at=past),
    ]


# --- purge_jobs ----------------------------------------------------------------------


def test_purge_jobs_deletes_only_expired_finished_jobs_by_default(unfinished_but_past_expiry):
    gone = [expired(status) for status in S.terminal()]
    kept = finished(S.FAILED, ago=timedelta(days=60))

    output = run("purge_jobs")

    assert "Deleted 3 expired jobs." in output
    assert not Job.objects.filter(pk__in=[job.pk for job in gone]).exists()
    assert remaining() == {kept.pk} | {job.pk for job in unfinished_but_past_expiry}


def test_purge_jobs_older_than(unfinished_but_past_expiry):
    old = finished(ago=timedelta(days=8))
    recent = finished(S.FAILED, ago=timedelta(days=6), expires_in=-timedelta(days=1))
    assert "Deleted 1 finished jobs." in run("purge_jobs", "--older-than", "7d")
    assert remaining() == {recent.pk} | {job.pk for job in unfinished_but_past_expiry}
    assert old.pk not in remaining()


def test_purge_jobs_status_and_kind_filters(unfinished_but_past_expiry):
    failed = finished(S.FAILED, kind="tests.fail")
    completed = finished(S.COMPLETED, kind="tests.fail")
    expired_fail, expired_noop = expired(kind="tests.fail"), expired(kind="tests.noop")

    run("purge_jobs", "--kind", "tests.fail")  # still only the expired ones
    assert expired_fail.pk not in remaining() and expired_noop.pk in remaining()

    run("purge_jobs", "--status", "failed")
    assert failed.pk not in remaining() and completed.pk in remaining()
    assert {job.pk for job in unfinished_but_past_expiry} <= remaining()


def test_purge_jobs_dry_run_prints_counts_and_changes_nothing(unfinished_but_past_expiry):
    for _ in range(2):
        expired(S.FAILED, kind="tests.fail")
    expired(S.COMPLETED, kind="tests.noop")
    before = remaining()

    output = run("purge_jobs", "--dry-run")

    assert "2  failed     tests.fail" in output and "1  completed  tests.noop" in output
    assert "Dry run: 3 expired jobs would be deleted. Nothing was changed." in output
    assert remaining() == before


def test_purge_jobs_batch_size_bounds_each_transaction_and_reports_progress(monkeypatch):
    for _ in range(25):
        expired()
    sizes: list[int] = []
    real = maintenance._locked
    monkeypatch.setattr(maintenance, "_locked", lambda ids: sizes.append(len(ids)) or real(ids))

    output = run("purge_jobs", "--batch-size", "2")

    assert sizes == [2] * 12 + [1]
    assert "... 20 deleted so far" in output and "Deleted 25 expired jobs." in output
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    "args",
    [["--older-than", "7x"], ["--older-than", "-1d"], ["--status", "pending"], ["--status", "processing"],
     ["--batch-size", "0"], ["--batch-size", "ten"]],
)  # fmt: skip
def test_purge_jobs_bad_arguments_exit_2_and_change_nothing(capsys, args):
    expired()
    before = remaining()
    code, err = run_from_command_line(capsys, "purge_jobs", *args)
    assert code == 2
    assert f"argument {args[0]}" in err
    assert remaining() == before


def test_bad_arguments_exit_2_from_the_real_command_line():
    result = subprocess.run(
        [sys.executable, "manage.py", "purge_jobs", "--older-than", "7x"],
        cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "is not a duration" in result.stderr


# --- retry_jobs --------------------------------------------------------------------------


def retry(*args: str, capture) -> str:
    with capture(execute=True):
        return run("retry_jobs", *args)


def test_retry_jobs_retries_failed_jobs_by_default(fake_queue, django_capture_on_commit_callbacks):
    failed = [finished(S.FAILED) for _ in range(2)]
    cancelled, completed = finished(S.CANCELLED), finished(S.COMPLETED)

    output = retry(capture=django_capture_on_commit_callbacks)

    assert "Retried 2 failed jobs." in output
    assert [status_of(job) for job in failed] == [S.PENDING, S.PENDING]
    assert (status_of(cancelled), status_of(completed)) == (S.CANCELLED, S.COMPLETED)
    assert sorted(fake_queue.job_ids) == sorted(str(job.pk) for job in failed)
    assert set(JobEvent.objects.values_list("type", "actor")) == {("retried", "command:retry_jobs")}


def test_retry_jobs_status_kind_and_since(fake_queue, django_capture_on_commit_callbacks):
    cancelled = finished(S.CANCELLED, kind="tests.noop")
    fail_kind = finished(S.FAILED, kind="tests.fail")
    noop_recent = finished(S.FAILED, kind="tests.noop", ago=timedelta(hours=1))
    noop_old = finished(S.FAILED, kind="tests.noop", ago=timedelta(hours=3))

    retry("--status", "cancelled", capture=django_capture_on_commit_callbacks)
    assert (status_of(cancelled), status_of(fail_kind)) == (S.PENDING, S.FAILED)

    retry("--kind", "tests.noop", "--since", "2h", capture=django_capture_on_commit_callbacks)
    assert [status_of(job) for job in (fail_kind, noop_recent, noop_old)] == [S.FAILED, S.PENDING, S.FAILED]
    assert fake_queue.job_ids == [str(cancelled.pk), str(noop_recent.pk)]


def test_retry_jobs_dry_run_changes_nothing(fake_queue, django_capture_on_commit_callbacks):
    jobs = [finished(S.FAILED, kind="tests.fail") for _ in range(3)]
    output = retry("--dry-run", capture=django_capture_on_commit_callbacks)
    assert "3  tests.fail" in output
    assert "Dry run: 3 failed jobs would be retried. Nothing was changed." in output
    assert [status_of(job) for job in jobs] == [S.FAILED] * 3
    assert fake_queue.enqueued == [] and not JobEvent.objects.exists()


@pytest.mark.parametrize(
    "args", [["--status", "completed"], ["--status", "pending"], ["--since", "2x"], ["--since", "soon"], ["--batch-size", "0"]]
)
def test_retry_jobs_bad_arguments_exit_2_and_change_nothing(capsys, fake_queue, args):
    job = finished(S.FAILED)
    code, err = run_from_command_line(capsys, "retry_jobs", *args)
    assert code == 2 and f"argument {args[0]}" in err
    assert status_of(job) == S.FAILED and fake_queue.enqueued == []


# --- jobs_stats ------------------------------------------------------------------------------


@pytest.fixture
def a_mix():
    now = timezone.now()
    make_job(created_at=now - timedelta(hours=1), kind="tests.noop")
    make_job(kind="tests.fail")
    make_job(status=S.PROCESSING, kind="tests.noop", started_at=now - timedelta(minutes=1))  # stuck: timeout 5 s
    make_job(status=S.PROCESSING, kind="purchases.execute", started_at=now)
    finished(S.FAILED, kind="tests.fail")


def test_jobs_stats_json(a_mix):
    get_broker().enqueue("a task waiting in django-q2")
    stats = json.loads(run("jobs_stats", "--json"))

    assert set(stats) == {"by_status", "by_status_and_kind", "oldest_pending_seconds", "stuck", "queue_depth"}
    assert stats["by_status"] == {"failed": 1, "pending": 2, "processing": 2}
    assert stats["by_status_and_kind"] == {
        "failed": {"tests.fail": 1},
        "pending": {"tests.fail": 1, "tests.noop": 1},
        "processing": {"purchases.execute": 1, "tests.noop": 1},
    }
    assert 3590 <= stats["oldest_pending_seconds"] <= 3700
    assert stats["stuck"] == 1
    # With the job table as the queue, the two pending jobs wait in it too.
    assert stats["queue_depth"] == 1 + (2 if queue.uses_job_table() else 0)


def test_jobs_stats_human_output(a_mix):
    output = run("jobs_stats")
    assert "1  pending    tests.noop" in output and "1  processing purchases.execute" in output
    assert "Oldest pending job: 360" in output
    assert "Stuck (processing past their timeout): 1" in output
    waiting = 2 if queue.uses_job_table() else 0  # the pending jobs are the queue there
    assert f"Tasks waiting in the django-q2 queue: {waiting}" in output


def test_jobs_stats_with_no_jobs():
    assert json.loads(run("jobs_stats", "--json"))["oldest_pending_seconds"] is None
    output = run("jobs_stats")
    assert "(no jobs)" in output and "Oldest pending job: none" in output


def test_jobs_stats_survives_a_broker_that_is_down(monkeypatch, caplog):
    def down():
        raise ConnectionError("broker down")

    monkeypatch.setattr(queue, "get_broker", down)
    assert json.loads(run("jobs_stats", "--json"))["queue_depth"] is None
    assert "Tasks waiting in the django-q2 queue: unknown (broker not reachable)" in run("jobs_stats")
    assert "Could not read the django-q2 queue size" in caplog.text


def test_load_demo_gives_the_demo_user_a_sales_history_once():
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    from purchases.models import Order, OrderStatus

    call_command("load_demo", stdout=StringIO())
    out = StringIO()
    call_command("load_demo", stdout=out)

    demo = get_user_model().objects.get(username="demo")
    orders = Order.objects.filter(owner=demo)
    assert orders.count() == 5 and set(orders.values_list("status", flat=True)) == {OrderStatus.PAID}
    assert "Past orders of 'demo': already there." in out.getvalue()

    client = APIClient(HTTP_HOST="localhost")
    client.force_authenticate(demo)
    report = client.post("/api/reports/sales/", {}, format="json")
    assert report.status_code == 200, report.content
    # Four of the five orders fall in the last 30 days.
    assert report.json()["orders"] == 4
    assert report.json()["total"] == "606.85"
