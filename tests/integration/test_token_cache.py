"""The per-process memory of recently seen API tokens (project/authentication.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from jobs.models import Job
from project import authentication
from tests.support.factories import token_client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_memory():
    authentication._recent.clear()
    yield
    authentication._recent.clear()


def token_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return sum("authtoken_token" in query["sql"] for query in queries)


def test_a_poll_soon_after_another_does_not_read_the_token_again(user):
    job = Job.objects.create(kind="tests.noop", owner=user)
    client = token_client(user)
    url = f"/api/jobs/{job.pk}/"

    assert token_queries(client, url) == 1
    assert token_queries(client, url) == 0


def test_a_deleted_token_is_refused_at_once(user):
    client = token_client(user)
    assert client.get("/api/jobs/").status_code == 200

    Token.objects.filter(user=user).get().delete()

    assert client.get("/api/jobs/").status_code == 401


def test_a_deactivated_user_is_refused_at_once(user):
    client = token_client(user)
    assert client.get("/api/jobs/").status_code == 200

    user.is_active = False
    user.save()

    assert client.get("/api/jobs/").status_code == 401


def test_no_memory_when_the_setting_is_zero(user, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    job = Job.objects.create(kind="tests.noop", owner=user)
    client = token_client(user)
    url = f"/api/jobs/{job.pk}/"

    assert token_queries(client, url) == 1
    assert token_queries(client, url) == 1


@pytest.mark.parametrize(
    "header",
    [
        "Bearer {key}", "bearer {key}", "Bearer  {key} ", "Bearer\t{key}", "Bearer {key} extra", "Bearer",
        "Token {key}", "Bearer\x1c{key}", "Bearer\xa0{key}", "Bearer {key}\xe9", "Basic YWxpY2U6eA==", "",
    ],
)
def test_the_header_read_from_meta_gets_drfs_own_answer(user, header):
    from rest_framework.authentication import TokenAuthentication
    from rest_framework.exceptions import AuthenticationFailed
    from rest_framework.test import APIRequestFactory

    key = Token.objects.create(user=user).key
    request = APIRequestFactory().get("/api/jobs/", HTTP_AUTHORIZATION=header.format(key=key))

    def answer(authenticate):
        try:
            found = authenticate(request)
        except AuthenticationFailed as exc:
            return ("refused", str(exc.detail))
        return None if found is None else ("user", found[0].pk)

    class DrfBearer(TokenAuthentication):
        keyword = "Bearer"

    ours = answer(authentication.BearerTokenAuthentication().authenticate)
    if header == "Bearer {key}":
        assert ours == ("user", user.pk)
        assert "headers" not in request.__dict__  # read from META, no header dictionary built
    assert ours == answer(DrfBearer().authenticate)
