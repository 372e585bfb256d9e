"""What a new user of the job admin stumbled on (issue 13, item 5): short ids, seconds, captions, ages."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.maintenance import jobs_bulk_retry
from jobs.models import Job, JobEvent, JobEventType, JobStatus
from jobs.selectors import job_id_range
from tests.support.admin import CHANGELIST, change_url, make_job, post_action, text

pytestmark = pytest.mark.django_db


def listed(response) -> set:
    assert response.status_code == 200, response.content[:500]
    return {job.pk for job in response.context["cl"].result_list}


def job_with_id(owner, pk: str, **fields) -> Job:
    return make_job(owner, id=uuid.UUID(pk), **fields)


# --- the short id finds its job ---------------------------------------------------------


@pytest.fixture
def neighbours(user):
    """Three jobs whose ids share a start; only the first two share the 8-character short id."""
    return [
        job_with_id(user, "0badcafe-0000-4000-8000-000000000001"),
        job_with_id(user, "0badcafe-ffff-4fff-bfff-ffffffffffff"),
        job_with_id(user, "0badcaff-0000-4000-8000-000000000000"),
    ]


def test_the_short_id_shown_in_the_list_finds_its_job(admin_client, user):
    jobs = [make_job(user) for _ in range(5)]
    for job in jobs:
        short = str(job.pk)[:8]
        assert f">{short}</a>" in admin_client.get(CHANGELIST).content.decode()
        assert listed(admin_client.get(CHANGELIST, {"q": short})) == {job.pk}
        assert listed(admin_client.get(CHANGELIST, {"q": f" {short.upper()} "})) == {job.pk}


def test_a_short_id_finds_every_job_it_starts_and_only_those(admin_client, neighbours):
    first, last, other = neighbours
    assert listed(admin_client.get(CHANGELIST, {"q": "0badcafe"})) == {first.pk, last.pk}
    assert listed(admin_client.get(CHANGELIST, {"q": "0badcafe-ffff"})) == {last.pk}
    assert listed(admin_client.get(CHANGELIST, {"q": str(other.pk)})) == {other.pk}
    assert listed(admin_client.get(CHANGELIST, {"q": "0badca"})) == set()  # too short to be an id


def test_a_short_id_is_a_range_of_the_primary_key_not_a_like(admin_client, neighbours):
    with CaptureQueriesContext(connection) as queries:
        assert len(listed(admin_client.get(CHANGELIST, {"q": "0badcafe"}))) == 2
    job_queries = [q["sql"] for q in queries if 'FROM "jobs_job"' in q["sql"] and "BETWEEN" in q["sql"]]
    assert job_queries, "no query looked the id up as a range"
    assert not any("LIKE" in q["sql"].upper() for q in queries if 'FROM "jobs_job"' in q["sql"])


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("0badcafe", ("0badcafe-0000-0000-0000-000000000000", "0badcafe-ffff-ffff-ffff-ffffffffffff")),
        ("0BADCAFE-12", ("0badcafe-1200-0000-0000-000000000000", "0badcafe-12ff-ffff-ffff-ffffffffffff")),
        ("0badcaf", None),
        ("0badcafg", None),
        ("alice", None),
    ],
)
def test_job_id_range(prefix, expected):
    found = job_id_range(prefix)
    assert found == (None if expected is None else tuple(uuid.UUID(value) for value in expected))


# --- the job page: seconds, one caption per event, consistent labels ---------------------


def test_times_on_the_job_page_are_to_the_second(admin_client, user):
    created = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    job = make_job(
        user, status=JobStatus.COMPLETED, created_at=created, started_at=created + timedelta(seconds=1),
        finished_at=created + timedelta(seconds=12), expires_at=created + timedelta(days=7, seconds=3),
    )  # fmt: skip
    JobEvent.objects.create(job=job, type=JobEventType.CLAIMED, at=created + timedelta(seconds=1), attempt=1)
    page = text(admin_client.get(change_url(job)))

    for when in ["2026-03-04 05:06:07 UTC", "2026-03-04 05:06:08 UTC", "2026-03-04 05:06:19 UTC", "2026-03-11 05:06:10 UTC"]:
        assert when in page
    # The timeline's row too.
    assert re.search(r'<td class="field-at_exact">\s*2026-03-04 05:06:08 UTC\s*</td>', page)


def test_the_timeline_names_each_event_once(admin_client, user):
    job = make_job(user, status=JobStatus.FAILED)
    for kind in (JobEventType.CREATED, JobEventType.CLAIMED, JobEventType.FAILED):
        JobEvent.objects.create(job=job, type=kind, attempt=1)
    page = text(admin_client.get(change_url(job)))

    # Django's tabular inline captions each row with the event's str() ("Claimed by a worker at ...").
    assert page.count("Claimed by a worker") == 1
    assert " at 20" not in page
    assert page.count(">Timeline<") == 1


def test_labels_are_capitalised_alike(admin_client, user):
    job = make_job(user, status=JobStatus.COMPLETED)
    detail = text(admin_client.get(change_url(job)))
    listing = text(admin_client.get(CHANGELIST))

    labels = re.findall(r"<label>([^<]+):</label>", detail)
    assert labels and all(label[0].isupper() for label in labels), labels
    assert "ID" in labels and "Id" not in labels
    headers = re.findall(r'<div class="text">(?:<a [^>]*>|<span>)?([^<]+)<', listing)
    assert {"ID", "Kind", "Owner", "Status", "Progress", "Attempts", "Created", "Duration"} <= set(headers), headers
    assert "By timeout" in listing and "By stuck" not in listing
    # The page's title names the status as the list does.
    assert f"{str(job.pk)[:8]} (Completed)" in detail and "(completed)" not in detail


# --- a retried job's age counts from its retry -----------------------------------------------


@pytest.fixture
def retried_long_after(user):
    """A job that failed three days ago and was retried by staff just now."""
    long_ago = timezone.now() - timedelta(days=3)
    job = make_job(user, status=JobStatus.FAILED, created_at=long_ago, finished_at=long_ago + timedelta(seconds=5))
    return job


def test_the_summary_ages_a_retried_job_from_its_retry(admin_client, retried_long_after):
    post_action(admin_client, "retry_jobs", [retried_long_after])
    assert Job.objects.get(pk=retried_long_after.pk).status == JobStatus.PENDING

    page = text(admin_client.get(CHANGELIST))
    age = re.search(r"Oldest pending job:\s*waiting ([^<]+?)\s*</span>", page)
    assert age, page[:2000]
    assert re.fullmatch(r"\d+ s", age.group(1)), age.group(1)  # seconds, not "3 d"


def test_the_job_page_shows_the_age_since_the_retry_and_since_creation(admin_client, retried_long_after):
    post_action(admin_client, "retry_jobs", [retried_long_after])
    page = text(admin_client.get(change_url(retried_long_after)))

    age = re.search(r'<div class="readonly">([^<]*since it was created)</div>', page)
    assert age, page
    assert re.match(r"\d+ s since its last retry \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\); 3 d since it was created", age.group(1))


def test_a_job_never_retried_is_aged_from_its_creation(admin_client, user):
    job = make_job(user, created_at=timezone.now() - timedelta(hours=2, minutes=1))
    page = text(admin_client.get(change_url(job)))
    assert ">2 h 1 min since it was created<" in page
    assert "Oldest pending job:\n    waiting 2 h 1 min" in text(admin_client.get(CHANGELIST))


def stats() -> dict:
    out = StringIO()
    call_command("jobs_stats", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_jobs_stats_ages_a_retried_job_from_its_retry(retried_long_after):
    jobs_bulk_retry(Job.objects.filter(pk=retried_long_after.pk), actor="staff:admin")
    assert stats()["oldest_pending_seconds"] < 60


def test_jobs_stats_ages_an_automatic_retry_from_the_end_of_its_backoff(user):
    now = timezone.now()
    make_job(user, created_at=now - timedelta(hours=1), available_at=now - timedelta(seconds=90), attempts=1)
    make_job(user, created_at=now - timedelta(hours=5), available_at=now + timedelta(minutes=5), attempts=1)  # not due
    assert 85 <= stats()["oldest_pending_seconds"] <= 120
