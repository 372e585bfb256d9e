"""The job changelist (columns, filters, search, summary, query count) and the read-only detail page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobStatus
from jobs.runner import run_job
from jobs.services import job_submit
from tests.support.admin import (
    CHANGELIST,
    change_url,
    make_job,
    staff_client,
    text,
)

pytestmark = pytest.mark.django_db


def listed(response) -> set:
    assert response.status_code == 200, response.content[:500]
    return {job.pk for job in response.context["cl"].result_list}


# --- columns ------------------------------------------------------------------


def test_changelist_renders_the_columns(admin_client, user):
    now = timezone.now()
    job = make_job(
        user, status=JobStatus.COMPLETED, kind="tests.echo", progress_percentage=100,
        started_at=now - timedelta(seconds=90), finished_at=now, attempts=1, max_attempts=3,
    )  # fmt: skip
    response = admin_client.get(CHANGELIST)
    page = response.content.decode()

    assert listed(response) == {job.pk}
    assert f">{str(job.pk)[:8]}</a>" in page
    assert "tests.<wbr>echo" in page and "alice" in page
    assert "background:#198754" in page and ">Completed</span>" in page
    assert "width:60px" in page and "width:100%;background:#198754" in page  # full progress bar
    assert "<td class=\"field-attempts_display\">1/3</td>" in page
    assert "<td class=\"field-duration_display\">90.0 s</td>" in page


def test_a_staff_user_needs_the_view_permission(django_user_model):
    _, nobody = staff_client(django_user_model, "nobody")
    _, viewer = staff_client(django_user_model, "viewer", "view_job")
    assert nobody.get(CHANGELIST).status_code == 403
    assert viewer.get(CHANGELIST).status_code == 200


# --- filters ------------------------------------------------------------------


def test_status_and_kind_filters(admin_client, user):
    failed = make_job(user, status=JobStatus.FAILED, kind="tests.fail")
    done = make_job(user, status=JobStatus.COMPLETED, kind="tests.noop")
    pending = make_job(user, kind="tests.fail")

    assert listed(admin_client.get(CHANGELIST, {"status__exact": "failed"})) == {failed.pk}
    assert listed(admin_client.get(CHANGELIST, {"kind": "tests.fail"})) == {failed.pk, pending.pk}
    assert listed(admin_client.get(CHANGELIST, {"kind": "tests.noop"})) == {done.pk}
    both = admin_client.get(CHANGELIST, {"kind": "tests.fail", "status__exact": "pending"})
    assert listed(both) == {pending.pk}


def test_kind_filter_offers_registered_kinds(admin_client):
    response = admin_client.get(CHANGELIST)
    page = response.content.decode()
    assert "?kind=tests.noop" in page and "?kind=purchases.execute" in page
    assert "?stuck=yes" in page


def test_stuck_filter_shows_processing_jobs_past_their_kinds_timeout(admin_client, user):
    now = timezone.now()
    stuck = make_job(user, status=JobStatus.PROCESSING, kind="tests.noop", started_at=now - timedelta(seconds=30))
    make_job(user, status=JobStatus.PROCESSING, kind="tests.noop", started_at=now)  # fresh: timeout is 5 s
    make_job(user, status=JobStatus.PROCESSING, kind="purchases.execute", started_at=now - timedelta(seconds=30))
    make_job(user, status=JobStatus.COMPLETED, started_at=now - timedelta(hours=1))

    assert listed(admin_client.get(CHANGELIST, {"stuck": "yes"})) == {stuck.pk}


def test_date_hierarchy_drills_down(admin_client, user):
    old = make_job(user, status=JobStatus.COMPLETED, created_at=datetime(2020, 5, 17, 12, tzinfo=UTC))
    make_job(user, status=JobStatus.COMPLETED, created_at=datetime(2020, 6, 1, 12, tzinfo=UTC))
    make_job(user)

    assert len(listed(admin_client.get(CHANGELIST, {"created_at__year": "2020"}))) == 2
    response = admin_client.get(CHANGELIST, {"created_at__year": "2020", "created_at__month": "5", "created_at__day": "17"})
    assert listed(response) == {old.pk}


@pytest.mark.parametrize(
    ("params", "code", "rows"),
    [({"created_at__year": "abc"}, 302, None), ({"created_at__year": "2020", "created_at__month": "13"}, 302, None),
     ({"status__exact": "bogus"}, 200, 0), ({"kind": "no.such"}, 200, 0), ({"stuck": "maybe"}, 200, 1), ({"p": "x"}, 200, 1)],
)  # fmt: skip
def test_garbage_filter_parameters_do_not_fail(admin_client, user, params, code, rows):
    make_job(user)
    response = admin_client.get(CHANGELIST, params)
    assert response.status_code == code
    if rows is None:
        assert response["Location"] == f"{CHANGELIST}?e=1"
    else:
        assert len(response.context["cl"].result_list) == rows


# --- search -------------------------------------------------------------------


@pytest.fixture
def searchable(user, other_user):
    user.email = "alice@example.com"
    user.save()
    return {
        "alice": make_job(user, idempotency_key="key-123"),
        "bob": make_job(other_user, idempotency_key="other-key"),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [("ALICE", {"alice"}), ("Alice@Example.com", {"alice"}), ("key-123", {"alice"}), ("bob", {"bob"})],
)
def test_search_by_owner_and_idempotency_key(admin_client, searchable, term, expected):
    found = listed(admin_client.get(CHANGELIST, {"q": term}))
    assert found == {searchable[name].pk for name in expected}


def test_search_by_full_job_id(admin_client, searchable):
    job = searchable["bob"]
    assert listed(admin_client.get(CHANGELIST, {"q": str(job.pk)})) == {job.pk}
    assert listed(admin_client.get(CHANGELIST, {"q": f" {str(job.pk).upper()} "})) == {job.pk}


@pytest.mark.parametrize("term", ["nothing-like-this", "%'; DROP TABLE jobs_job; --", "12345678-1234", "é" * 300])
def test_search_with_garbage_finds_nothing_and_does_not_fail(admin_client, searchable, term):
    assert listed(admin_client.get(CHANGELIST, {"q": term})) == set()
    assert Job.objects.count() == 2


# --- summary ------------------------------------------------------------------


def test_summary_counts_the_last_24_hours_and_ages_the_oldest_pending(admin_client, user):
    now = timezone.now()
    for _ in range(2):
        make_job(user, status=JobStatus.FAILED)
    make_job(user, status=JobStatus.COMPLETED)
    make_job(user, created_at=now - timedelta(hours=3, minutes=5))
    make_job(user, status=JobStatus.FAILED, created_at=now - timedelta(days=3))  # outside the window

    page = text(admin_client.get(CHANGELIST))

    for label, count in [("Pending", 1), ("Processing", 0), ("Completed", 1), ("Failed", 2), ("Cancelled", 0)]:
        assert f"{label}: {count}</span>" in page
    assert "Oldest pending job:\n    waiting 3 h 5 min" in page


def test_summary_without_pending_jobs_says_none(admin_client, user):
    make_job(user, status=JobStatus.COMPLETED)
    assert "Oldest pending job:\n    none" in text(admin_client.get(CHANGELIST))


# --- query count --------------------------------------------------------------


def changelist_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(CHANGELIST, params or {}).status_code == 200
    return len(queries)


@pytest.mark.parametrize("params", [{}, {"status__exact": "failed"}, {"kind": "tests.noop"}, {"q": "alice"}])
def test_query_count_does_not_grow_with_the_number_of_jobs(admin_client, django_user_model, params):
    owners = [django_user_model.objects.create_user(username=f"owner{i}") for i in range(50)]
    for owner in owners[:5]:
        make_job(owner, status=JobStatus.FAILED)
    few = changelist_queries(admin_client, params)
    for owner in owners[5:]:
        make_job(owner, status=JobStatus.FAILED)
    many = changelist_queries(admin_client, params)

    assert many == few
    assert many <= 15


# --- detail page --------------------------------------------------------------


def test_detail_page_is_read_only(admin_client, user):
    job = make_job(user, status=JobStatus.FAILED, payload={"n": 1})
    response = admin_client.get(change_url(job))
    assert response.status_code == 200
    assert 'name="_save"' not in response.content.decode()
    assert 'name="_continue"' not in response.content.decode()

    post = admin_client.post(change_url(job), {"status": "completed", "kind": "x", "payload": "{}"})
    assert post.status_code == 403
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.kind, stored.payload) == (JobStatus.FAILED, "tests.noop", {"n": 1})
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_the_delete_view_refuses_an_unfinished_job(admin_client, user):
    job = make_job(user, status=JobStatus.PROCESSING)
    assert admin_client.post(change_url(job).replace("change", "delete"), {"post": "yes"}).status_code == 403
    assert Job.objects.filter(pk=job.pk).exists()


def test_detail_page_pretty_prints_payload_result_and_error(admin_client, user):
    job = make_job(
        user, status=JobStatus.FAILED, payload={"n": 5, "label": "x"}, result={"partial": [1, 2]},
        error={"code": "out_of_luck", "message": "No luck today."},
    )  # fmt: skip
    page = text(admin_client.get(change_url(job)))
    assert '<pre class="jobs-json">{\n  "label": "x",\n  "n": 5\n}</pre>' in page
    assert '{\n  "partial": [\n    1,\n    2\n  ]\n}' in page
    assert '{\n  "code": "out_of_luck",\n  "message": "No luck today."\n}' in page


def test_detail_page_shows_the_last_traceback_and_links_to_django_q(admin_client, user):
    job = job_submit(kind="tests.boom", payload={}, owner=user).job
    assert run_job(str(job.pk)) == "retrying"

    response = admin_client.get(change_url(job))
    page = text(response)
    assert "Traceback (most recent call last)" in page
    assert "RuntimeError: kaboom: secret internals" in page
    assert f'href="/admin/django_q/success/?q={job.pk}"' in page
    assert f'href="/admin/django_q/failure/?q={job.pk}"' in page
    assert admin_client.get(f"/admin/django_q/success/?q={job.pk}").status_code == 200
    assert admin_client.get(f"/admin/django_q/failure/?q={job.pk}").status_code == 200


def test_date_drill_down_never_sorts_the_whole_table(admin_client, user):
    now = timezone.now()
    for days in (0, 40, 400):
        Job.objects.create(kind="tests.noop", owner=user, created_at=now - timedelta(days=days))
    for url in ("/admin/jobs/job/", f"/admin/jobs/job/?created_at__year={now.year}"):
        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(url)
        assert response.status_code == 200
        sql = " ".join(query["sql"] for query in queries).upper()
        assert "DISTINCT DATE_TRUNC" not in sql and "DJANGO_DATETIME_TRUNC" not in sql
    years = admin_client.get("/admin/jobs/job/").content.decode()
    assert f"created_at__year={now.year}" in years
    assert f"created_at__year={(now - timedelta(days=400)).year}" in years
