"""Admin actions on jobs: retry, cancel, purge; their permissions, messages, batches and log."""

from __future__ import annotations

import re

import pytest
from django.contrib.admin.models import CHANGE, DELETION, LogEntry

from jobs import maintenance
from jobs.models import Job, JobEvent, JobStatus
from jobs.runner import run_job
from jobs.services import job_submit
from purchases import payments
from purchases.models import Order, OrderStatus, Product
from tests.support.admin import (
    CHANGELIST,
    action_names,
    bulk_jobs,
    make_job,
    messages_of,
    post_action,
    staff_client,
    status_of,
)  # fmt: skip

pytestmark = pytest.mark.django_db

S = JobStatus


def one_of_each(owner) -> dict[str, Job]:
    return {status: make_job(owner, status=status) for status in S.values}


def provider_down(**kwargs):
    raise ConnectionError("provider unreachable")


def hidden_inputs(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)


# --- retry --------------------------------------------------------------------


def test_retry_resets_failed_and_cancelled_jobs_and_enqueues_them_on_commit(
    admin_client, admin_user, user, fake_queue, django_capture_on_commit_callbacks
):
    jobs = one_of_each(user)
    Job.objects.filter(pk=jobs[S.FAILED].pk).update(attempts=3, error={"code": "x", "message": "y"})

    with django_capture_on_commit_callbacks() as callbacks:
        response = post_action(admin_client, "retry_jobs", list(jobs.values()))
        assert fake_queue.enqueued == []  # nothing is sent before the commit
    for callback in callbacks:
        callback()

    assert response.status_code == 302
    assert messages_of(response) == [
        "Retried 2 jobs. Skipped 3 (1 completed, 1 pending, 1 processing): only failed or cancelled jobs can be retried."
    ]
    retried = {str(jobs[S.FAILED].pk), str(jobs[S.CANCELLED].pk)}
    assert sorted(fake_queue.job_ids) == sorted(retried)
    for status in (S.FAILED, S.CANCELLED):
        stored = Job.objects.get(pk=jobs[status].pk)
        assert (stored.status, stored.attempts, stored.error, stored.finished_at, stored.expires_at) == (
            S.PENDING, 0, None, None, None,
        )  # fmt: skip
    assert all(status_of(jobs[s]) == s for s in (S.COMPLETED, S.PENDING, S.PROCESSING))
    entries = LogEntry.objects.filter(action_flag=CHANGE, change_message="Retried", user=admin_user)
    assert sorted(entries.values_list("object_id", flat=True)) == sorted(retried)
    assert set(JobEvent.objects.filter(type="retried").values_list("actor", flat=True)) == {"staff:admin"}
    history = admin_client.get(f"{CHANGELIST}{jobs[S.FAILED].pk}/history/")
    assert "<td>Retried</td>" in history.content.decode()


def test_retrying_only_unretryable_jobs_warns_and_changes_nothing(admin_client, user, fake_queue):
    job = make_job(user, status=S.COMPLETED)
    response = post_action(admin_client, "retry_jobs", [job])
    assert messages_of(response) == [
        "Retried 0 jobs. Skipped 1 (1 completed): only failed or cancelled jobs can be retried."
    ]
    assert status_of(job) == S.COMPLETED and fake_queue.enqueued == []
    assert not LogEntry.objects.exists()


# --- cancel -------------------------------------------------------------------


def test_cancel_stops_pending_jobs_asks_processing_ones_and_skips_finished(admin_client, user):
    jobs = one_of_each(user)
    response = post_action(admin_client, "cancel_jobs", list(jobs.values()))

    assert messages_of(response) == [
        "Cancelled 2 jobs. Skipped 3 (1 cancelled, 1 completed, 1 failed): finished jobs cannot be cancelled."
    ]
    cancelled = Job.objects.get(pk=jobs[S.PENDING].pk)
    assert (cancelled.status, cancelled.error["code"]) == (S.CANCELLED, "cancelled")
    assert cancelled.finished_at is not None and cancelled.expires_at is not None
    running = Job.objects.get(pk=jobs[S.PROCESSING].pk)
    assert (running.status, running.cancel_requested) == (S.PROCESSING, True)
    assert status_of(jobs[S.COMPLETED]) == S.COMPLETED
    assert LogEntry.objects.filter(action_flag=CHANGE, change_message="Cancelled").count() == 2
    actors = JobEvent.objects.filter(type__in=["cancelled", "cancel_requested"]).values_list("actor", flat=True)
    assert list(actors) == ["staff:admin", "staff:admin"]


def test_cancelling_a_purchase_waiting_for_its_retry_releases_the_stock(
    admin_client, user, make_product, monkeypatch
):
    product = make_product(stock=5)
    job = job_submit(kind="purchases.execute", payload={"goods": [{"product_id": product.pk, "quantity": 2}]}, owner=user).job
    monkeypatch.setattr(payments, "charge", provider_down)
    assert run_job(str(job.pk)) == "retrying"
    assert Product.objects.get(pk=product.pk).stock == 3

    post_action(admin_client, "cancel_jobs", [job])

    assert status_of(job) == S.CANCELLED
    assert Product.objects.get(pk=product.pk).stock == 5
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.RELEASED


def test_retrying_a_failed_purchase_completes_it_once_the_provider_is_back(
    admin_client, user, make_product, monkeypatch, django_capture_on_commit_callbacks
):
    product = make_product(stock=5)
    job = job_submit(kind="purchases.execute", payload={"goods": [{"product_id": product.pk, "quantity": 2}]}, owner=user).job
    real_charge = payments.charge
    monkeypatch.setattr(payments, "charge", provider_down)
    for _ in range(job.max_attempts):
        Job.objects.filter(pk=job.pk).update(available_at=None)
        run_job(str(job.pk))
    assert (status_of(job), Product.objects.get(pk=product.pk).stock) == (S.FAILED, 5)

    monkeypatch.setattr(payments, "charge", real_charge)
    with django_capture_on_commit_callbacks(execute=True):
        post_action(admin_client, "retry_jobs", [job])
    run_job(str(job.pk))

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.error) == (S.COMPLETED, None)
    assert Order.objects.get(job_id=job.pk).status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock == 3


# --- purge --------------------------------------------------------------------


def test_purge_asks_for_confirmation_then_deletes_finished_jobs_only(admin_client, admin_user, user):
    jobs = one_of_each(user)
    selection = list(jobs.values())

    confirm = post_action(admin_client, "purge_jobs", selection)
    assert confirm.status_code == 200
    assert confirm.templates[0].name == "admin/jobs/job/purge_confirmation.html"
    page = confirm.content.decode()
    assert "3 finished jobs will be deleted for good" in page
    assert "2 pending or processing jobs in the selection will be skipped" in page
    assert Job.objects.count() == 5

    form = hidden_inputs(page)
    assert ("post", "yes") in form and ("action", "purge_jobs") in form
    data: dict[str, list[str]] = {}
    for name, value in form:
        data.setdefault(name, []).append(value)
    done = admin_client.post(CHANGELIST, data)

    assert done.status_code == 302
    assert messages_of(done) == [
        "Purged 3 jobs. Skipped 2 (1 pending, 1 processing): pending and processing jobs are never purged."
    ]
    assert set(Job.objects.values_list("status", flat=True)) == {S.PENDING, S.PROCESSING}
    assert LogEntry.objects.filter(action_flag=DELETION, user=admin_user).count() == 3


# --- permissions --------------------------------------------------------------


def test_django_bulk_delete_is_not_offered(admin_client):
    assert action_names(admin_client) == {"retry_jobs", "cancel_jobs", "purge_jobs"}


@pytest.mark.parametrize(
    ("action", "codename", "status", "changed"),
    [
        ("retry_jobs", "retry_job", S.FAILED, lambda job: status_of(job) == S.PENDING),
        ("cancel_jobs", "cancel_job", S.PENDING, lambda job: status_of(job) == S.CANCELLED),
        ("purge_jobs", "delete_job", S.FAILED, lambda job: not Job.objects.filter(pk=job.pk).exists()),
    ],
)
def test_each_action_needs_its_own_permission(django_user_model, user, action, codename, status, changed):
    _, viewer = staff_client(django_user_model, "viewer", "view_job", *({"retry_job", "cancel_job", "delete_job"} - {codename}))
    _, allowed = staff_client(django_user_model, "allowed", "view_job", codename)
    job = make_job(user, status=status)

    assert action not in action_names(viewer)
    denied = post_action(viewer, action, [job], post="yes")
    assert messages_of(denied) == ["No action selected."]
    assert not changed(job) and not LogEntry.objects.exists()

    assert action_names(allowed) == {action}
    post_action(allowed, action, [job], post="yes")
    assert changed(job)


# --- select all matching, in batches ------------------------------------------


@pytest.fixture
def batches(monkeypatch) -> list[int]:
    """Record the size of each batch the bulk operations lock (one transaction each)."""
    sizes: list[int] = []
    real = maintenance._locked

    def spy(ids):
        sizes.append(len(ids))
        return real(ids)

    monkeypatch.setattr(maintenance, "_locked", spy)
    return sizes


def test_retry_all_matching_the_filters_works_in_batches(
    admin_client, user, batches, fake_queue, django_capture_on_commit_callbacks
):
    total = 2 * maintenance.DEFAULT_BATCH_SIZE + 1
    bulk_jobs(total, status=S.FAILED, kind="tests.noop")
    other_kind = make_job(user, status=S.FAILED, kind="tests.fail")
    completed = make_job(user, status=S.COMPLETED, kind="tests.noop")
    shown = Job.objects.filter(kind="tests.noop", status=S.FAILED)[:1]

    with django_capture_on_commit_callbacks(execute=True):
        response = post_action(admin_client, "retry_jobs", list(shown), across=True, query="?status__exact=failed&kind=tests.noop")

    assert messages_of(response) == [f"Retried {total} jobs."]
    assert Job.objects.filter(kind="tests.noop", status=S.PENDING).count() == total
    assert (status_of(other_kind), status_of(completed)) == (S.FAILED, S.COMPLETED)
    assert len(batches) == 3 and max(batches) <= maintenance.DEFAULT_BATCH_SIZE
    assert len(fake_queue.enqueued) == total
    assert LogEntry.objects.filter(change_message="Retried").count() == total


def test_purge_all_matching_confirms_then_deletes_in_batches(admin_client, user, batches):
    total = maintenance.DEFAULT_BATCH_SIZE + 10
    bulk_jobs(total, status=S.COMPLETED, kind="tests.noop")
    running = [make_job(user, status=S.PROCESSING, kind="tests.noop") for _ in range(2)]
    other_kind = make_job(user, status=S.FAILED, kind="tests.fail")
    query = "?kind=tests.noop"
    shown = list(Job.objects.filter(kind="tests.noop")[:2])

    confirm = post_action(admin_client, "purge_jobs", shown, across=True, query=query)
    assert f"{total} finished jobs will be deleted" in confirm.content.decode()
    assert Job.objects.count() == total + 3 and batches == []

    data = {"action": "purge_jobs", "select_across": "1", "post": "yes", "_selected_action": [str(j.pk) for j in shown]}
    done = admin_client.post(CHANGELIST + query, data)

    assert messages_of(done) == [
        f"Purged {total} jobs. Skipped 2 (2 processing): pending and processing jobs are never purged."
    ]
    assert set(Job.objects.values_list("pk", flat=True)) == {running[0].pk, running[1].pk, other_kind.pk}
    assert len(batches) == 2 and max(batches) <= maintenance.DEFAULT_BATCH_SIZE
    assert LogEntry.objects.filter(action_flag=DELETION).count() == total
