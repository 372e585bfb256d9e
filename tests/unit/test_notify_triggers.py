"""On PostgreSQL the job table announces its changes, deletions included (migrations 0004, 0007)."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from jobs.models import Job

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="NOTIFY triggers exist on PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]


def _listener() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    listener = psycopg.connect(**params, autocommit=True)
    listener.execute("LISTEN jobs_job_changed")
    return listener


def _heard(listener: psycopg.Connection) -> list[str]:
    return [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]


def test_a_deleted_job_is_announced_with_its_id(make_job):
    job = make_job()
    listener = _listener()
    try:
        Job.objects.filter(pk=job.pk).delete()
        assert _heard(listener) == [str(job.pk)]
    finally:
        listener.close()


def test_an_update_is_announced_with_the_job_id(make_job):
    job = make_job()
    listener = _listener()
    try:
        Job.objects.filter(pk=job.pk).update(progress_message="half way")
        assert _heard(listener) == [str(job.pk)]
    finally:
        listener.close()
