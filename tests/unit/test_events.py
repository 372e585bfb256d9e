"""The job timeline: JobEvent rows written by submit, the runner, the API and staff, shown in the admin."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from jobs import JobError
from jobs.models import Job, JobEvent, JobStatus
from jobs.runner import run_job, worker_name
from jobs.services import job_submit
from jobs.timeline import actor_for_user, event_record, event_record_many
from tests.support import handlers
from tests.support.admin import change_url, post_action, staff_client
from tests.support.factories import token_client

pytestmark = pytest.mark.django_db


def timeline(job) -> list[tuple[str, str, int | None, str]]:
    return list(JobEvent.objects.filter(job=job).values_list("type", "actor", "attempt", "message"))


def run_now(job) -> str:
    """Run a job at once, even if it waits for its backoff."""
    Job.objects.filter(pk=job.pk).update(available_at=timezone.now())
    return run_job(str(job.pk))


def raise_(exc):
    def callback(ctx, payload):
        raise exc

    return callback


# --- what the engine records -----------------------------------------------------


def test_a_successful_run_records_created_claimed_and_completed(user):
    job = job_submit(kind="tests.noop", payload={}, owner=user).job
    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    worker = f"worker:{worker_name()}"
    assert timeline(job) == [
        ("created", "user:alice", None, ""),
        ("claimed", worker, 1, ""),
        ("completed", worker, 1, ""),
    ]


def test_a_system_job_is_created_by_system_and_an_explicit_actor_wins(user):
    system = job_submit(kind="tests.noop", payload={}, owner=None).job
    api = job_submit(kind="tests.noop", payload={}, owner=user, actor="api:alice").job
    assert timeline(system)[0][:2] == ("created", "system")
    assert timeline(api)[0][:2] == ("created", "api:alice")


def test_each_failed_attempt_keeps_its_error_and_the_final_failure_is_recorded(user):
    job = job_submit(kind="tests.boom", payload={}, owner=user).job
    assert [run_now(job) for _ in range(handlers.BOOM_MAX_ATTEMPTS)] == ["retrying", JobStatus.FAILED]

    events = timeline(job)
    assert [(t, a) for t, _, a, _ in events] == [
        ("created", None), ("claimed", 1), ("attempt_failed", 1), ("claimed", 2), ("attempt_failed", 2), ("failed", 2),
    ]  # fmt: skip
    assert events[2][3] == "RuntimeError: kaboom: secret internals"
    assert events[5][3].startswith("internal_error: ")


def test_a_business_failure_records_its_code_and_message(user):
    job = job_submit(kind="tests.fail", payload={}, owner=user).job
    run_job(str(job.pk))
    assert timeline(job)[-1][0::3] == ("failed", "out_of_luck: No luck today.")


def test_cancel_through_the_api_is_recorded_with_the_user(user):
    pending = job_submit(kind="tests.noop", payload={}, owner=user).job
    running = job_submit(kind="tests.noop", payload={}, owner=user).job
    Job.objects.filter(pk=running.pk).update(status=JobStatus.PROCESSING, started_at=timezone.now(), attempts=1)
    api = token_client(user)

    assert api.post(f"/api/jobs/{pending.pk}/cancel/").status_code == 200
    assert api.post(f"/api/jobs/{running.pk}/cancel/").status_code == 202

    assert timeline(pending)[-1][:2] == ("cancelled", "api:alice")
    assert timeline(running)[-1][:2] == ("cancel_requested", "api:alice")


def test_a_cancel_honoured_by_the_handler_is_recorded(user, monkeypatch):
    job = job_submit(kind="tests.call", payload={}, owner=user).job

    def cancel_midway(ctx, payload):
        Job.objects.filter(pk=ctx.job_id).update(cancel_requested=True)
        ctx.progress(50, "half way")

    monkeypatch.setattr(handlers, "CALLBACK", cancel_midway)
    assert run_job(str(job.pk)) == JobStatus.CANCELLED
    assert timeline(job)[-1][:3] == ("cancelled", f"worker:{worker_name()}", 1)


def test_event_helpers(user, make_job):
    jobs = [make_job(), make_job()]
    event_record_many(job_ids=[j.pk for j in jobs], type="retried", actor="x" * 300)
    event_record(job_id=jobs[0].pk, type="cancelled", actor="reaper", attempt=2, message="lease expired")

    assert [len(actor) for (_, actor, _, _) in timeline(jobs[1])] == [255]
    assert timeline(jobs[0])[-1] == ("cancelled", "reaper", 2, "lease expired")
    assert actor_for_user(user, via="staff") == "staff:alice"
    assert actor_for_user(AnonymousUser(), via="api") == "api"
    assert actor_for_user(None, via="command") == "command"


def test_events_go_with_their_job(make_job):
    job = make_job(status=JobStatus.COMPLETED, finished_at=timezone.now())
    event_record(job_id=job.pk, type="completed")
    Job.objects.filter(pk=job.pk).delete()
    assert not JobEvent.objects.exists()


# --- the timeline in the admin -------------------------------------------------------


def test_the_admin_timeline_still_shows_the_first_failure_after_a_retry(
    admin_client, user, monkeypatch, fake_queue, django_capture_on_commit_callbacks
):
    job = job_submit(kind="tests.call", payload={"n": 1}, owner=user).job
    monkeypatch.setattr(handlers, "CALLBACK", raise_(ConnectionError("first failure")))
    assert run_now(job) == "retrying"
    monkeypatch.setattr(handlers, "CALLBACK", raise_(JobError("nope", "Not today.")))
    assert run_now(job) == JobStatus.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        post_action(admin_client, "retry_jobs", [job])
    assert fake_queue.job_ids[-1] == str(job.pk)
    monkeypatch.setattr(handlers, "CALLBACK", lambda ctx, payload: {"ok": True})
    assert run_job(str(job.pk)) == JobStatus.COMPLETED

    response = admin_client.get(change_url(job))
    page = html.unescape(response.content.decode())
    assert response.status_code == 200
    assert [t for t, *_ in timeline(job)] == [
        "created", "claimed", "attempt_failed", "claimed", "failed", "retried", "claimed", "completed",
    ]  # fmt: skip
    order = [f">{cell}</td>" for cell in [
        "Created", "user:alice", "Claimed by a worker", f"worker:{worker_name()}", "Attempt failed",
        "ConnectionError: first failure", "Failed", "nope: Not today.", "Retried", "staff:admin", "Completed",
    ]]  # fmt: skip
    position = page.index('id="events-heading"')  # the inline's section; each needle must follow the last
    for needle in order:
        position = page.find(needle, position)
        assert position != -1, f"{needle!r} missing or out of order in the timeline"


def test_staff_who_may_view_jobs_see_the_timeline(django_user_model, user):
    job = job_submit(kind="tests.boom", payload={}, owner=user).job
    run_job(str(job.pk))
    _, viewer = staff_client(django_user_model, "viewer", "view_job")

    page = html.unescape(viewer.get(change_url(job)).content.decode())
    assert 'id="events-heading"' in page, "no timeline on the page"
    assert ">RuntimeError: kaboom: secret internals</td>" in page.split('id="events-heading"', 1)[-1]
