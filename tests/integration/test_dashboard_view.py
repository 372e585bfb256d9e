"""The admin's jobs dashboard: who may see it, its JSON, and that every link finds its jobs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import JobStatus
from tests.support import handlers  # noqa: F401 - registers the tests.* kinds
from tests.support.admin import staff_client
from tests.support.factories import make_job

pytestmark = pytest.mark.django_db

PAGE = "/admin/jobs/dashboard/"
DATA = "/admin/jobs/dashboard/data/"


@pytest.fixture
def viewer(django_user_model):
    return staff_client(django_user_model, "viewer", "view_job")[1]


@pytest.fixture
def jobs():
    now = timezone.now()
    failed = make_job(
        status=JobStatus.FAILED, kind="tests.noop", error={"code": "insufficient_stock", "message": "Out <b>of</b> stock"},
        started_at=now - timedelta(seconds=2), finished_at=now - timedelta(seconds=1),
    )  # fmt: skip
    done = make_job(status=JobStatus.COMPLETED, kind="tests.noop")
    pending = make_job(status=JobStatus.PENDING, kind="tests.noop")
    running = make_job(status=JobStatus.PROCESSING, kind="tests.noop")
    return {"failed": failed, "done": done, "pending": pending, "running": running}


@pytest.mark.parametrize("path", [PAGE, DATA])
def test_anonymous_is_sent_to_the_admin_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/admin/login/?next={path}")


@pytest.mark.parametrize("path", [PAGE, DATA])
def test_staff_without_view_job_is_refused(django_user_model, path):
    _, client = staff_client(django_user_model, "nobody", "retry_job")
    assert client.get(path).status_code == 403


def test_non_staff_user_is_sent_to_login(django_user_model):
    user = django_user_model.objects.create_user(username="shopper", password="x-pass-123")
    client = Client()
    client.force_login(user)
    assert client.get(DATA).status_code == 302


def test_page_renders_with_its_data_charts_library_and_links(viewer, jobs):
    response = viewer.get(PAGE)
    assert response.status_code == 200
    body = response.content.decode()
    assert "uPlot-1.6.32.iife.min.js" in body and "jobs/dashboard.js" in body
    assert 'id="dash-data"' in body and 'data-url="/admin/jobs/dashboard/data/"' in body
    # The error message is data for the script, escaped, never markup.
    assert "Out <b>of</b> stock" not in body


def test_data_has_every_figure_and_the_links_list_its_jobs(viewer, jobs):
    response = viewer.get(DATA)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    assert set(data) >= {"now", "totals", "finished", "queue", "kinds", "failures", "clusters", "links"}
    assert data["totals"]["pending"] == 1 and data["totals"]["processing"] == 1
    noop = next(row for row in data["kinds"] if row["kind"] == "tests.noop")
    assert (noop["pending"], noop["running"], noop["finished_hour"], noop["failed_hour"]) == (1, 1, 2, 1)
    assert noop["failure_rate"] == 0.5
    (failure,) = data["failures"]
    assert failure["code"] == "insufficient_stock" and failure["url"] == f"/admin/jobs/job/{jobs['failed'].pk}/change/"

    def listed(url: str) -> set[str]:
        page = viewer.get(url)
        assert page.status_code == 200, url
        return {name for name, job in jobs.items() if str(job.pk) in page.content.decode()}

    assert listed(noop["links"]["pending"]) == {"pending"}
    assert listed(noop["links"]["running"]) == {"running"}
    assert listed(noop["links"]["finished_hour"]) == {"failed", "done"}
    assert listed(noop["links"]["failed_hour"]) == {"failed"}
    assert listed(failure["code_url"]) == {"failed"}
    assert listed(data["links"]["completed_hour"]) == {"done"}
    assert viewer.get(failure["url"]).status_code == 200


def test_a_refresh_makes_a_bounded_number_of_queries(viewer, jobs, django_assert_max_num_queries):
    # Session and user, the latest sample, the rollup history (3, before it
    # is cached), the live tail, active counts (4), failures, running jobs.
    with django_assert_max_num_queries(15):
        assert viewer.get(DATA).status_code == 200


def test_admin_index_and_job_changelist_link_to_the_dashboard(viewer, django_user_model):
    link = f'href="{PAGE}"'
    assert link in viewer.get("/admin/").content.decode()
    assert link in viewer.get("/admin/jobs/job/").content.decode()
    _, other = staff_client(django_user_model, "other", "retry_job")
    assert link not in other.get("/admin/").content.decode()
