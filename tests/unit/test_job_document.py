"""The job document: built directly from the row, the same as DRF's field-by-field output."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import RequestFactory, override_settings
from django.utils import timezone
from rest_framework import serializers

from jobs.selectors import job_etag
from jobs.api.serializers import JobSerializer
from jobs.models import Job, JobStatus


class FieldByField(JobSerializer):
    """DRF's own serialization of the declared fields, to compare with."""

    to_representation = serializers.ModelSerializer.to_representation


def documents(job: Job) -> tuple[dict, dict]:
    request = RequestFactory().get("/", HTTP_HOST="testserver")
    context = {"request": request}
    return dict(JobSerializer(job, context=context).data), dict(FieldByField(job, context=context).data)


@pytest.mark.parametrize(
    "fields",
    [
        {"status": JobStatus.PENDING},
        {
            "status": JobStatus.COMPLETED,
            "result": {"order": 7, "items": [1, "x", None], "total": "9.50"},
            "result_status": 201,
            "progress_percentage": 100,
            "progress_message": "Done",
            "attempts": 2,
            "started_at": timezone.now() - timedelta(seconds=3),
            "finished_at": timezone.now(),
            "expires_at": timezone.now() + timedelta(days=7),
        },
        {"status": JobStatus.FAILED, "error": {"code": "boom", "message": "No."}, "cancel_requested": True},
    ],
)
def test_the_document_is_what_drf_would_write(fields):
    job = Job(kind="tests.noop", created_at=timezone.now(), **fields)

    fast, drf = documents(job)

    assert fast == drf
    assert list(fast) == list(JobSerializer.Meta.fields)


@override_settings(TIME_ZONE="Europe/Paris")
def test_datetimes_follow_the_current_time_zone_like_drf():
    job = Job(kind="tests.noop", created_at=timezone.now())

    fast, drf = documents(job)

    assert fast["created_at"] == drf["created_at"]


def test_the_etag_changes_with_every_column_of_the_version():
    job = Job(kind="tests.noop", created_at=timezone.now(), updated_at=timezone.now())
    first = job_etag(job)
    job.progress_message = "Charging"
    second = job_etag(job)
    job.updated_at += timedelta(microseconds=1)

    assert len({first, second, job_etag(job)}) == 3
