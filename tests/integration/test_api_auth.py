"""Authentication of the API: tokens, bearer header, sessions and CSRF."""

from __future__ import annotations

import json

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from jobs.models import Job
from tests.integration.api_helpers import make_job, purchase_body

pytestmark = pytest.mark.django_db


def test_token_endpoint_returns_the_users_token(user):
    response = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "alice-pass-123"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token"}
    assert body["token"] == Token.objects.get(user=user).key


def test_token_from_the_endpoint_authenticates_api_calls(user):
    token = APIClient().post(
        "/api/auth/token/", {"username": "alice", "password": "alice-pass-123"}, format="json"
    ).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/jobs/").status_code == 200


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong-password"},
        {"username": "nobody", "password": "alice-pass-123"},
        {"username": "alice"},
        {},
    ],
)
def test_token_endpoint_rejects_bad_credentials(user, credentials):
    response = APIClient().post("/api/auth/token/", credentials, format="json")
    assert response.status_code == 400
    assert "token" not in response.json()
    assert not Token.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/jobs/"), ("post", "/api/purchases/"), ("get", "/api/products/")],
)
def test_anonymous_requests_are_401_with_www_authenticate(method, path):
    client = APIClient()
    if method == "post":
        response = client.post(path, {"goods": []}, format="json")
    else:
        response = client.get(path)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "detail" in response.json()


def test_anonymous_purchase_creates_no_job(make_product):
    product = make_product()
    response = APIClient().post("/api/purchases/", purchase_body(product.pk), format="json")
    assert response.status_code == 401
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    "header",
    ["Bearer not-a-real-token", "Bearer ", "Bearer two words", "Token {key}", "Basic YWxpY2U6eA=="],
)
def test_wrong_or_malformed_authorization_is_401(user, header):
    key = Token.objects.create(user=user).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(key=key))
    response = client.get("/api/jobs/")
    assert response.status_code == 401
    assert response.has_header("WWW-Authenticate")


def test_token_of_an_inactive_user_is_401(user):
    key = Token.objects.create(user=user).key
    user.is_active = False
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/jobs/").status_code == 401


def test_force_login_session_reads_jobs(user):
    job = make_job(user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.get("/api/jobs/")
    assert response.status_code == 200
    assert [item["id"] for item in response.json()["results"]] == [str(job.pk)]


def test_password_login_session_reads_jobs(user):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password="alice-pass-123")
    assert client.get("/api/jobs/").status_code == 200


def test_session_post_without_csrf_token_is_403(user, make_product):
    product = make_product()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(
        "/api/purchases/", data=json.dumps(purchase_body(product.pk)), content_type="application/json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert Job.objects.count() == 0


def test_session_cancel_without_csrf_token_is_403(user):
    job = make_job(user)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post(f"/api/jobs/{job.pk}/cancel/").status_code == 403
    job.refresh_from_db()
    assert job.status == "pending"


def test_session_post_with_csrf_token_is_accepted(user, make_product, django_capture_on_commit_callbacks):
    product = make_product()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/admin/login/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/purchases/",
            data=json.dumps(purchase_body(product.pk)),
            content_type="application/json",
            HTTP_X_CSRFTOKEN=token,
        )
    assert response.status_code == 202
    assert Job.objects.get().owner == user


def test_bearer_token_post_needs_no_csrf_token(user, make_product):
    product = make_product()
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    response = client.post("/api/purchases/", purchase_body(product.pk), format="json")
    assert response.status_code == 202


def test_token_endpoint_ignores_a_stale_bearer_token(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer no-longer-valid")
    response = client.post(
        "/api/auth/token/", {"username": "alice", "password": "alice-pass-123"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key
