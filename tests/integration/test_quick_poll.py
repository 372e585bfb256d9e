"""The plain poll answered outside DRF's cycle (jobs/api/quick_poll.py) is the DRF view's answer, byte for byte."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import RequestFactory, override_settings

from jobs.api.quick_poll import QuickPoll
from jobs.api.views import JobDetailView
from jobs.models import JobStatus
from project import authentication
from tests.support.factories import make_job, token_for

pytestmark = pytest.mark.django_db

HEADERS = ("Content-Type", "Allow", "Vary", "ETag", "Cache-Control", "Retry-After")


@pytest.fixture(autouse=True)
def fresh_state():
    authentication._recent.clear()
    cache.clear()
    yield
    authentication._recent.clear()
    cache.clear()


def get(path: str, **headers: str):
    return RequestFactory().get(path, **headers)


def drf_answer(request, job_id):
    response = JobDetailView.as_view()(request, job_id=job_id)
    response.render()
    return response


def assert_same(quick, drf):
    assert quick is not None, "the quick path declined a plain poll"
    assert quick.status_code == drf.status_code
    assert quick.content == drf.content
    for name in HEADERS:
        assert quick.get(name) == drf.get(name), name


@pytest.mark.parametrize("status", [JobStatus.PROCESSING, JobStatus.COMPLETED])
def test_a_plain_poll_gets_what_the_drf_view_gives(user, status):
    job = make_job(user, status=status, result={"order": 7, "note": "café"}, progress_percentage=40)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    path = f"/api/jobs/{job.pk}/"
    quick = QuickPoll(JobDetailView)(get(path, **auth), str(job.pk))
    drf = drf_answer(get(path, **auth), str(job.pk))

    assert drf.status_code == 200
    assert_same(quick, drf)
    assert ("Retry-After" in quick) is (status == JobStatus.PROCESSING)


def test_a_poll_with_the_current_etag_gets_the_same_304(user):
    job = make_job(user, status=JobStatus.PROCESSING)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    path = f"/api/jobs/{job.pk}/"
    etag = drf_answer(get(path, **auth), str(job.pk))["ETag"]
    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}'):
        headers = {**auth, "HTTP_IF_NONE_MATCH": if_none_match}
        quick = QuickPoll(JobDetailView)(get(path, **headers), str(job.pk))
        drf = drf_answer(get(path, **headers), str(job.pk))
        assert drf.status_code == 304
        assert_same(quick, drf)


def test_accept_json_and_any_are_plain(user):
    job = make_job(user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    for accept in ("application/json", "*/*"):
        quick = QuickPoll(JobDetailView)(get(f"/api/jobs/{job.pk}/", HTTP_ACCEPT=accept, **auth), str(job.pk))
        assert quick is not None and quick.status_code == 200


def test_everything_else_is_left_to_the_drf_view(user, other_user):
    job = make_job(user, status=JobStatus.PROCESSING)
    foreign = make_job(other_user)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    path = f"/api/jobs/{job.pk}/"
    factory = RequestFactory()
    declined = {
        "a long poll": (factory.get(path + "?wait=5", **auth), job.pk),
        "a query string": (factory.get(path + "?format=json", **auth), job.pk),
        "another media type": (factory.get(path, HTTP_ACCEPT="text/html", **auth), job.pk),
        "HEAD": (factory.head(path, **auth), job.pk),
        "DELETE": (factory.delete(path, **auth), job.pk),
        "no credentials": (factory.get(path), job.pk),
        "a session only": (factory.get(path, HTTP_COOKIE=f"{settings.SESSION_COOKIE_NAME}=abc"), job.pk),
        "an unknown token": (factory.get(path, HTTP_AUTHORIZATION="Bearer nope"), job.pk),
        "a malformed header": (factory.get(path, HTTP_AUTHORIZATION="Bearer a b"), job.pk),
        "another scheme": (factory.get(path, HTTP_AUTHORIZATION="Basic eDp5"), job.pk),
        "someone else's job": (factory.get(f"/api/jobs/{foreign.pk}/", **auth), foreign.pk),
        "a malformed id": (factory.get("/api/jobs/nope/", **auth), "nope"),
    }
    for reason, (request, job_id) in declined.items():
        assert QuickPoll(JobDetailView)(request, str(job_id)) is None, reason


def test_an_inactive_users_token_is_left_to_the_drf_view(user):
    job = make_job(user)
    key = token_for(user)
    user.is_active = False
    user.save()
    request = get(f"/api/jobs/{job.pk}/", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert QuickPoll(JobDetailView)(request, str(job.pk)) is None


@override_settings(
    REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"jobs.poll": "2/min"}}
)
def test_quick_polls_count_against_the_poll_rate_and_the_refusal_is_drfs(user):
    job = make_job(user, status=JobStatus.PROCESSING)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(user)}"}
    path = f"/api/jobs/{job.pk}/"
    quick = QuickPoll(JobDetailView)
    assert quick(get(path, **auth), str(job.pk)).status_code == 200
    assert quick(get(path, **auth), str(job.pk)).status_code == 200
    assert quick(get(path, **auth), str(job.pk)) is None

    refused = drf_answer(get(path, **auth), str(job.pk))
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1


def test_the_routed_poll_takes_the_quick_path(api, user, monkeypatch):
    job = make_job(user, status=JobStatus.PROCESSING)
    answered = []
    real = QuickPoll.__call__

    def spy(self, request, job_id):
        response = real(self, request, job_id)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(QuickPoll, "__call__", spy)
    first = api.get(f"/api/jobs/{job.pk}/")
    again = api.get(f"/api/jobs/{job.pk}/", HTTP_IF_NONE_MATCH=first["ETag"])

    assert (first.status_code, again.status_code) == (200, 304)
    assert answered == [True, True]
    assert first.json()["id"] == str(job.pk)
