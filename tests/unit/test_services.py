"""jobs.services: submit (validation, enqueue on commit, idempotency), cancel, delete."""

from __future__ import annotations

import pytest
from django.db import transaction
from rest_framework.exceptions import ValidationError

import jobs
from jobs import services
from jobs.exceptions import IdempotencyKeyConflict, InvalidJobState, UnknownJobKind
from jobs.models import Job, JobStatus
from jobs.runner import claim, run_job
from jobs.services import job_cancel, job_delete, job_submit


# --- Submit ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [({}, "n"), ({"n": -1}, "n"), ({"n": "many"}, "n"), ({"n": 1, "price": "abc"}, "price")],
)
def test_submit_validates_with_the_kinds_serializer(payload, field, user, fake_queue):
    with pytest.raises(ValidationError) as excinfo:
        job_submit(kind="tests.echo", payload=payload, owner=user)

    assert field in excinfo.value.detail
    assert Job.objects.count() == 0
    assert fake_queue.enqueued == []


@pytest.mark.django_db
def test_submit_of_an_unknown_kind_raises(user):
    with pytest.raises(UnknownJobKind):
        job_submit(kind="tests.no_such_kind", payload={}, owner=user)
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_submit_stores_the_normalized_payload(user):
    submission = job_submit(
        kind="tests.echo", payload={"n": "5", "price": "1.5"}, owner=user
    )

    assert submission.created is True
    stored = Job.objects.get(pk=submission.job.pk)
    assert stored.payload == {"n": 5, "label": "x", "price": "1.50"}
    assert (stored.kind, stored.owner, stored.status) == ("tests.echo", user, JobStatus.PENDING)
    assert stored.max_attempts == 3
    assert stored.request_fingerprint


@pytest.mark.django_db
def test_submit_takes_max_attempts_from_the_kind(user):
    job = job_submit(kind="tests.boom", payload={}, owner=user).job
    assert Job.objects.get(pk=job.pk).max_attempts == 2


@pytest.mark.django_db
def test_submit_enqueues_only_on_commit(user, fake_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_submit(kind="tests.noop", payload={"a": 1}, owner=user).job
        assert fake_queue.enqueued == []

    assert len(callbacks) == 1
    assert fake_queue.enqueued == []
    callbacks[0]()
    assert fake_queue.enqueued == [(job.pk, "tests.noop")]


@pytest.mark.django_db
def test_a_rolled_back_submit_enqueues_nothing(user, fake_queue, django_capture_on_commit_callbacks):
    # Inside the test's transaction the atomic block is a savepoint, whose
    # rollback drops its on-commit callbacks as a real rollback does; the
    # capture then runs what a commit would have run.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            job_submit(kind="tests.noop", payload={}, owner=user)
            raise RuntimeError("the view failed after submitting")

    assert callbacks == []
    assert Job.objects.count() == 0
    assert fake_queue.enqueued == []

    with django_capture_on_commit_callbacks(execute=True):
        job = jobs.submit("tests.noop", {}, owner=user)
    assert fake_queue.enqueued == [(job.pk, "tests.noop")]


# --- Idempotency ----------------------------------------------------------


@pytest.mark.django_db
def test_the_same_key_and_payload_return_the_same_job(user, django_capture_on_commit_callbacks, fake_queue):
    with django_capture_on_commit_callbacks(execute=True):
        first = job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")
        # The same request after normalisation ("1" and 1 are one request).
        again = job_submit(kind="tests.echo", payload={"n": "1"}, owner=user, idempotency_key="k1")

    assert (first.created, again.created) == (True, False)
    assert again.job.pk == first.job.pk
    assert Job.objects.count() == 1
    assert fake_queue.enqueued == [(first.job.pk, "tests.echo")]


@pytest.mark.django_db
def test_the_same_key_with_another_payload_is_a_conflict(user):
    job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")

    with pytest.raises(IdempotencyKeyConflict):
        job_submit(kind="tests.echo", payload={"n": 2}, owner=user, idempotency_key="k1")
    with pytest.raises(IdempotencyKeyConflict):
        job_submit(kind="tests.noop", payload={"n": 1}, owner=user, idempotency_key="k1")
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_from_two_users_makes_two_jobs(user, other_user):
    mine = job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")
    theirs = job_submit(kind="tests.echo", payload={"n": 1}, owner=other_user, idempotency_key="k1")

    assert mine.created and theirs.created
    assert mine.job.pk != theirs.job.pk
    assert Job.objects.filter(idempotency_key="k1").count() == 2


@pytest.mark.django_db
def test_without_a_key_every_submit_makes_a_job(user):
    first = job_submit(kind="tests.echo", payload={"n": 1}, owner=user)
    second = job_submit(kind="tests.echo", payload={"n": 1}, owner=user)
    assert first.job.pk != second.job.pk


def _lose_the_race_once(monkeypatch):
    """Make the first replay look miss, as when another request inserts in between."""
    real = services._replay
    calls = []

    def replay(*args, **kwargs):
        calls.append(args)
        return None if len(calls) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(services, "_replay", replay)
    return calls


@pytest.mark.django_db
def test_the_insert_race_answers_with_the_winners_job(user, monkeypatch, fake_queue, django_capture_on_commit_callbacks):
    winner = job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")
    calls = _lose_the_race_once(monkeypatch)

    with django_capture_on_commit_callbacks(execute=True):
        loser = job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")

    assert len(calls) == 2
    assert loser.created is False
    assert loser.job.pk == winner.job.pk
    assert Job.objects.count() == 1
    assert fake_queue.enqueued == []


@pytest.mark.django_db
def test_the_insert_race_with_another_payload_is_a_conflict(user, monkeypatch):
    job_submit(kind="tests.echo", payload={"n": 1}, owner=user, idempotency_key="k1")
    _lose_the_race_once(monkeypatch)

    with pytest.raises(IdempotencyKeyConflict):
        job_submit(kind="tests.echo", payload={"n": 2}, owner=user, idempotency_key="k1")
    assert Job.objects.count() == 1


# --- Cancel ---------------------------------------------------------------


@pytest.mark.django_db
def test_cancelling_a_pending_job_cancels_it_at_once(make_job):
    job = make_job()

    returned = job_cancel(job=job)

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.CANCELLED
    assert stored.error == {"code": "cancelled", "message": "The job was cancelled."}
    assert stored.cancel_requested is True
    assert stored.finished_at is not None
    assert stored.expires_at is not None and stored.expires_at > stored.finished_at
    assert returned.status == JobStatus.CANCELLED


@pytest.mark.django_db
def test_cancelling_a_processing_job_only_asks_it_to_stop(make_job):
    job = make_job()
    claim(job.pk)

    returned = job_cancel(job=job)

    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.cancel_requested) == (JobStatus.PROCESSING, True)
    assert stored.error is None and stored.finished_at is None
    assert returned.cancel_requested is True


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["tests.noop", "tests.fail"])
def test_cancelling_a_finished_job_is_refused(kind, make_job):
    job = make_job(kind)
    run_job(str(job.pk))
    before = Job.objects.filter(pk=job.pk).values().get()

    with pytest.raises(InvalidJobState) as excinfo:
        job_cancel(job=job)

    assert excinfo.value.code == "job_finished"
    assert Job.objects.filter(pk=job.pk).values().get() == before


@pytest.mark.django_db
def test_cancelling_twice_is_refused(make_job):
    job = make_job()
    job_cancel(job=job)
    with pytest.raises(InvalidJobState):
        job_cancel(job=job)


# --- Delete ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["tests.noop", "tests.fail"])
def test_deleting_a_finished_job_removes_it(kind, make_job):
    job = make_job(kind)
    run_job(str(job.pk))

    job_delete(job=job)

    assert not Job.objects.filter(pk=job.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("processing", [False, True], ids=["pending", "processing"])
def test_deleting_an_active_job_is_refused_and_keeps_it(processing, make_job):
    job = make_job()
    if processing:
        claim(job.pk)

    with pytest.raises(InvalidJobState) as excinfo:
        job_delete(job=job)

    assert excinfo.value.code == "job_not_finished"
    assert Job.objects.filter(pk=job.pk).exists()


def test_validated_data_json_cannot_carry_is_stored_as_the_input(user, make_product):
    # A PrimaryKeyRelatedField validates to a model instance: the job keeps
    # the body that passed validation instead of failing with a 500.
    from rest_framework import serializers

    from jobs.services import _validated
    from purchases.models import Product

    class ByProduct(serializers.Serializer):
        product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())

    product = make_product()
    assert _validated(ByProduct, {"product": product.pk}, {"owner": user}) == {"product": product.pk}
