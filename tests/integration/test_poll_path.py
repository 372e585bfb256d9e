"""What keeps the hot paths cheap: statements prepared, room for heap-only updates, one URL resolution, nothing hidden from a query log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from unittest import mock

import pytest
from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver

from jobs.models import JobStatus
from jobs.selectors import job_get_for_owner
from project import asgi_handler
from project.asgi_handler import OneHopASGIHandler
from tests.support.factories import make_job

on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's; run with DATABASE_URL"
)


@on_postgresql
@pytest.mark.django_db
def test_the_poll_statement_is_prepared_after_the_threshold(user):
    threshold = settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"]
    assert threshold == 5  # Django's default is None: never prepared
    job = make_job(user, status=JobStatus.COMPLETED, result={"n": 1})

    for _ in range(threshold + 1):
        assert job_get_for_owner(owner=user, job_id=str(job.pk)).result == {"n": 1}

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FROM jobs_job WHERE id = $1 AND owner_id = $2" in sql for sql in prepared), prepared


@on_postgresql
@pytest.mark.django_db
def test_the_job_table_leaves_room_on_its_pages_for_a_rows_next_versions():
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'jobs_job'")
        (options,) = cursor.fetchone()
    assert "fillfactor=80" in options


@pytest.mark.django_db
def test_a_query_log_still_sees_the_poll_statement(user, other_user):
    job = make_job(user, status=JobStatus.COMPLETED, result={"n": 2})

    with CaptureQueriesContext(connection) as queries:
        assert job_get_for_owner(owner=user, job_id=str(job.pk)).result == {"n": 2}
        assert job_get_for_owner(owner=other_user, job_id=str(job.pk)) is None

    assert len(queries) == 2
    assert all("jobs_job" in query["sql"] for query in queries)


def _asgi_get(handler: OneHopASGIHandler, path: str) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(handler(scope, receive, send))
    return sent[0]["status"]


def test_the_asgi_handler_resolves_a_path_once_and_then_remembers_it(monkeypatch):
    monkeypatch.setattr(asgi_handler, "_matches", (None, {}))
    handler = OneHopASGIHandler()
    resolver = get_resolver()
    with mock.patch.object(resolver, "resolve", wraps=resolver.resolve) as resolve:
        # The sign-in page: a synchronous view that reads no database.
        statuses = [_asgi_get(handler, "/accounts/login/") for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert resolve.call_count == 1, [call.args for call in resolve.call_args_list]


def test_a_remembered_match_is_each_callers_own():
    """The chain swaps in the plain poll's view (sync_variant): a later ?wait= must still find the async one."""
    import uuid

    job_id = str(uuid.uuid4())
    path = f"/api/jobs/{job_id}/"
    first = asgi_handler._resolve(path)
    assert iscoroutinefunction(first.func) and first.func.sync_variant is not None
    first.func = first.func.sync_variant
    first.kwargs["job_id"] = "changed"

    second = asgi_handler._resolve(path)
    assert second is not first
    assert iscoroutinefunction(second.func)
    assert second.kwargs == {"job_id": job_id}


@pytest.mark.django_db
@pytest.mark.parametrize("status", [JobStatus.PENDING, JobStatus.PROCESSING, JobStatus.FAILED])
def test_a_polled_row_has_the_etag_and_headers_of_its_job(user, status):
    from jobs.api.responses import polling_headers
    from jobs.selectors import job_etag
    from jobs.selectors import job_poll_for_owner

    job = make_job(user, status=status, result={"n": 3}, error={"code": "x"}, progress_message="half")
    polled = job_poll_for_owner(owner=user, job_id=str(job.pk))
    built = polled.job  # what a 200 serializes

    assert job_etag(polled) == job_etag(built) == job_etag(type(job).objects.get(pk=job.pk))
    assert polling_headers(polled, "e") == polling_headers(built, "e")
    assert (polled.pk, polled.status, built.result, built.error) == (job.pk, status, {"n": 3}, {"code": "x"})


@pytest.mark.django_db
@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"cancel_requested": True, "result_status": 202, "progress_percentage": 40},
        {"progress_message": "Paiement | étape 2 ✓", "attempts": 2, "max_attempts": 5},
        {"expires_at": None, "finished_at": None, "started_at": None},
        # Before the epoch, and a time with no microseconds.
        {"updated_at": datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)},
        {"updated_at": datetime(2026, 11, 30, 12, 0, tzinfo=UTC)},
    ],
)
def test_the_queried_etag_is_the_one_the_job_computes(user, fields):
    """On PostgreSQL the poll's query computes the tag; it must match job_version's to the byte."""
    from jobs.selectors import PolledJob, job_etag, job_poll_for_owner

    job = make_job(user, status=JobStatus.PROCESSING, **fields)
    polled = job_poll_for_owner(owner=user, job_id=str(job.pk))
    stored = type(job).objects.get(pk=job.pk)

    assert job_etag(polled) == job_etag(stored) == job_etag(job) == job_etag(PolledJob(job=stored))
    # The times the row held as text come back as the ORM reads them.
    for name in ("created_at", "updated_at", "started_at", "finished_at", "expires_at"):
        assert getattr(polled.job, name) == getattr(stored, name)
    job.progress_percentage += 1
    assert job_etag(job) != job_etag(polled)


def test_the_job_path_is_what_reverse_gives_under_any_script_prefix():
    import uuid

    from django.urls import reverse, set_script_prefix

    from jobs.api.serializers import job_path

    job_id = uuid.uuid4()
    try:
        for prefix in ("/", "/shop/"):
            set_script_prefix(prefix)
            assert job_path(job_id) == reverse("jobs:job-detail", kwargs={"job_id": job_id})
            assert job_path(job_id).startswith(prefix)
    finally:
        set_script_prefix("/")
