"""Tombstones: written with every kind of removal, in one statement per batch, looked up, purged."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.exceptions import InvalidJobState
from jobs.maintenance import jobs_bulk_purge, jobs_purge_expired, purge_expired_task
from jobs.models import Job, JobStatus, Tombstone, TombstoneReason
from jobs.services import job_delete
from jobs.tombstones import tombstone_for_owner, tombstones_purge

pytestmark = pytest.mark.django_db
S = JobStatus
DAY = timedelta(days=1)


def expired(make_job, **fields):
    now = timezone.now()
    return make_job(status=S.COMPLETED, finished_at=now - DAY, expires_at=now - timedelta(seconds=1), **fields)


def test_deleting_a_finished_job_leaves_a_tombstone(make_job, user):
    job = make_job(status=S.FAILED, finished_at=timezone.now(), kind="tests.echo")
    before = timezone.now()
    job_delete(job=job)
    assert not Job.objects.filter(pk=job.pk).exists()
    stone = Tombstone.objects.get(pk=job.pk)
    assert (stone.owner_id, stone.kind, stone.reason) == (user.pk, "tests.echo", TombstoneReason.DELETED)
    assert before <= stone.removed_at <= timezone.now()


def test_refusing_to_delete_an_active_job_leaves_no_tombstone(make_job):
    job = make_job(status=S.PENDING)
    with pytest.raises(InvalidJobState):
        job_delete(job=job)
    assert Job.objects.filter(pk=job.pk).exists()
    assert not Tombstone.objects.exists()


def test_the_ttl_purge_leaves_expired_tombstones_in_one_insert_per_batch(make_job):
    jobs = [expired(make_job) for _ in range(5)]
    system = expired(make_job, owner=None)
    kept = make_job(status=S.COMPLETED, finished_at=timezone.now(), expires_at=timezone.now() + DAY)
    with CaptureQueriesContext(connection) as queries:
        assert jobs_purge_expired(batch_size=2) == 6
    inserts = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("INSERT") and "jobs_tombstone" in q["sql"]]
    assert len(inserts) == 3  # batches of 2, 2 and 2: one statement each, never one per job
    stones = Tombstone.objects.all()
    assert {stone.pk for stone in stones} == {job.pk for job in jobs}  # nobody to tell about a system job
    assert {stone.reason for stone in stones} == {TombstoneReason.EXPIRED}
    assert Job.objects.filter(pk=kept.pk).exists() and not Job.objects.filter(pk=system.pk).exists()


def test_a_staff_purge_says_purged_and_skips_active_jobs(make_job):
    done = make_job(status=S.CANCELLED, finished_at=timezone.now())
    running = make_job(status=S.PROCESSING, started_at=timezone.now())
    result = jobs_bulk_purge(Job.objects.all())
    assert (result.changed, dict(result.skipped)) == (1, {S.PROCESSING: 1})
    assert list(Tombstone.objects.values_list("pk", "reason")) == [(done.pk, TombstoneReason.PURGED)]
    assert Job.objects.filter(pk=running.pk).exists()


def test_an_existing_tombstone_is_kept(make_job, user):
    job = expired(make_job)
    earlier = timezone.now() - DAY
    Tombstone.objects.create(job_id=job.pk, owner=user, kind="old.kind", removed_at=earlier, reason="deleted")
    assert jobs_purge_expired() == 1
    assert Tombstone.objects.get(pk=job.pk).kind == "old.kind"


def test_a_tombstone_is_found_by_its_owner_only_within_the_retention(make_job, user, other_user):
    job = make_job(status=S.COMPLETED, finished_at=timezone.now())
    job_delete(job=job)
    assert tombstone_for_owner(owner=user, job_id=str(job.pk)).reason == TombstoneReason.DELETED
    assert tombstone_for_owner(owner=other_user, job_id=str(job.pk)) is None
    assert tombstone_for_owner(owner=user, job_id="not-a-uuid") is None
    assert tombstone_for_owner(owner=user, job_id=str(uuid.uuid4())) is None
    with override_settings(JOBS={"TOMBSTONE_RETENTION": 60}):
        later = timezone.now() + timedelta(seconds=61)
        assert tombstone_for_owner(owner=user, job_id=str(job.pk), now=later) is None


def test_the_ttl_task_purges_tombstones_past_the_retention(user):
    now = timezone.now()
    old = Tombstone.objects.create(job_id=uuid.uuid4(), owner=user, kind="k", removed_at=now - 8 * DAY, reason="expired")
    recent = Tombstone.objects.create(job_id=uuid.uuid4(), owner=user, kind="k", removed_at=now - 6 * DAY, reason="expired")
    outcome = purge_expired_task()
    assert outcome["tombstones"] == 1
    assert list(Tombstone.objects.values_list("pk", flat=True)) == [recent.pk]
    with override_settings(JOBS={"TOMBSTONE_RETENTION": 3600}):
        assert tombstones_purge() == 1
    assert not Tombstone.objects.filter(pk__in=[old.pk, recent.pk]).exists()


def test_deleting_a_user_takes_their_tombstones(make_job, user):
    job_delete(job=make_job(status=S.COMPLETED, finished_at=timezone.now()))
    user.delete()
    assert not Tombstone.objects.exists()
