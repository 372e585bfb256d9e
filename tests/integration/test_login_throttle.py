"""Password guessing meets 429: the token endpoint and the login pages, per address and per username."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/auth/token/"


def rates(address: str = "1000/min", username: str = "1000/min") -> Any:
    """Override the sign-in rates, keeping the rest of REST_FRAMEWORK."""
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {
        **rest["DEFAULT_THROTTLE_RATES"],
        "auth.address": address,
        "auth.username": username,
    }
    return override_settings(REST_FRAMEWORK=rest)


@pytest.fixture
def password_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record each username whose password is checked (by the API or a login form)."""
    from django.contrib.auth import authenticate as real_authenticate
    from django.contrib.auth import forms
    from rest_framework.authtoken import serializers

    checked: list[str] = []

    def authenticate(request: Any = None, **credentials: Any) -> Any:
        checked.append(credentials.get("username"))
        return real_authenticate(request, **credentials)

    monkeypatch.setattr(serializers, "authenticate", authenticate)
    monkeypatch.setattr(forms, "authenticate", authenticate)
    yield checked


def token(client: APIClient, username: Any, password: str = "wrong-password", **extra: Any) -> Any:
    return client.post(TOKEN_URL, {"username": username, "password": password}, format="json", **extra)


def test_wrong_passwords_for_one_username_end_in_429_without_checking_the_password(user, password_checks):
    client = APIClient()
    with rates(username="5/min"):
        codes = [token(client, "alice").status_code for _ in range(5)]
        throttled = token(client, "alice")
        right_password = token(client, "alice", "alice-pass-123")
    assert codes == [400] * 5
    assert throttled.status_code == 429
    assert 1 <= int(throttled["Retry-After"]) <= 60
    assert throttled.json()["code"] == "throttled"
    assert "Too many sign-in attempts" in throttled.json()["detail"]
    # Refused before the password hash: only the five attempts were checked.
    assert password_checks == ["alice"] * 5
    assert right_password.status_code == 429


def test_the_username_budget_ignores_case_spaces_and_the_address(user):
    with rates(username="3/min"):
        codes = [
            token(APIClient(REMOTE_ADDR=f"10.0.0.{n}"), name).status_code
            for n, name in enumerate(["alice", "ALICE", " Alice ", "alice"])
        ]
    assert codes == [400, 400, 400, 429]


def test_successful_sign_ins_do_not_use_up_the_username_budget(user):
    client = APIClient()
    with rates(username="2/min"):
        codes = [token(client, "alice", "alice-pass-123").status_code for _ in range(5)]
        codes += [token(client, "alice").status_code for _ in range(3)]
    assert codes == [200] * 5 + [400, 400, 429]


def test_one_users_failures_do_not_lock_another_user(user, other_user):
    client = APIClient()
    with rates(username="2/min"):
        for _ in range(3):
            token(client, "alice")
        response = token(client, "bob", "bob-pass-123")
    assert response.status_code == 200


def test_one_address_is_limited_across_usernames_and_x_forwarded_for_does_not_help(user):
    client = APIClient()
    with rates(address="4/min"):
        codes = [
            token(client, f"user{n}", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(5)
        ]
        elsewhere = token(APIClient(REMOTE_ADDR="192.0.2.7"), "alice", "alice-pass-123")
    assert codes == [400, 400, 400, 400, 429]
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    "body",
    ['["alice"]', '{"username": {"a": 1}, "password": "x"}', '{"username": 7, "password": "x"}', '"alice"'],
)
def test_odd_bodies_are_4xx_never_500(body):
    response = APIClient().generic("POST", TOKEN_URL, body, content_type="application/json")
    assert 400 <= response.status_code < 500


@pytest.mark.parametrize("path", ["/admin/login/", "/accounts/login/"])
def test_login_pages_answer_429_after_wrong_passwords_without_checking_the_password(
    path, django_user_model, password_checks
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    client = Client()
    with rates(username="3/min"):
        codes = [
            client.post(path, {"username": "admin", "password": f"guess{n}"}).status_code for n in range(3)
        ]
        throttled = client.post(path, {"username": "admin", "password": "admin-pass-123"})
    assert codes == [200, 200, 200]  # the form again, with its error
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) >= 1
    assert b"Too many sign-in attempts" in throttled.content
    assert password_checks == ["admin"] * 3


def test_the_admin_and_the_api_share_one_budget_per_username(django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    with rates(username="3/min"):
        for _ in range(3):
            token(APIClient(), "admin")
        response = Client().post("/admin/login/", {"username": "admin", "password": "admin-pass-123"})
    assert response.status_code == 429


def test_the_admin_login_still_signs_in(django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")
    client = Client()
    assert client.get("/admin/login/").status_code == 200
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "admin-pass-123"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
