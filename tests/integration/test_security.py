"""Limits on what clients send, throttles, and django-q2's admin kept to superusers."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.test import override_settings
from django_q.models import Failure, Schedule

from jobs.models import Job

pytestmark = pytest.mark.django_db


def post_raw(api, body: str, content_type: str = "application/json"):
    return api.generic("POST", "/api/purchases/", body, content_type=content_type)


def test_a_body_over_the_limit_is_413_and_creates_nothing(api, make_product):
    product = make_product()
    padding = "x" * (70 * 1024)
    body = json.dumps({"goods": [{"product_id": product.pk, "quantity": 1}], "payment_token": padding})
    response = post_raw(api, body)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]
    assert not Job.objects.exists()


@pytest.mark.parametrize("depth", [25, 100_000])
def test_deeply_nested_json_is_400_not_500(api, depth):
    response = post_raw(api, "[" * depth + "]" * depth if depth < 1000 else "[" * depth)
    assert response.status_code in (400, 413)
    assert not Job.objects.exists()


@pytest.mark.parametrize("body", ['{"goods": NaN}', '{"goods": Infinity}', '\xff\xfe{}'])
def test_non_standard_json_is_400(api, body):
    response = post_raw(api, body)
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


@pytest.mark.parametrize(
    "payment_token", ["'; DROP TABLE jobs_job; --", "ünïcødé ✓ 日本語", "a" * 100]
)
def test_odd_strings_are_data_not_code(api, make_product, payment_token, django_capture_on_commit_callbacks):
    product = make_product()
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/purchases/",
            {"goods": [{"product_id": product.pk, "quantity": 1}], "payment_token": payment_token},
            format="json",
        )
    assert response.status_code == 202
    assert Job.objects.get().payload["payment_token"] == payment_token


def test_polling_is_throttled_per_user_with_retry_after(api, other_api, user, make_product):
    cache.clear()
    job = Job.objects.create(kind="purchases.execute", owner=user)
    rates = {"jobs.poll": "3/min", "jobs.submit": "120/min"}
    with override_settings(REST_FRAMEWORK={**_rest_settings(), "DEFAULT_THROTTLE_RATES": rates}):
        codes = [api.get(f"/api/jobs/{job.pk}/").status_code for _ in range(4)]
        throttled = api.get(f"/api/jobs/{job.pk}/")
        other = other_api.get(f"/api/jobs/{job.pk}/")
    cache.clear()
    assert codes == [200, 200, 200, 429]
    assert int(throttled["Retry-After"]) > 0
    assert other.status_code == 404  # another user has a budget of their own


def test_submissions_are_throttled_per_user(api, make_product):
    cache.clear()
    product = make_product()
    body = {"goods": [{"product_id": product.pk, "quantity": 1}]}
    rates = {"jobs.poll": "1200/min", "jobs.submit": "2/min"}
    with override_settings(REST_FRAMEWORK={**_rest_settings(), "DEFAULT_THROTTLE_RATES": rates}):
        codes = [api.post("/api/purchases/", body, format="json").status_code for _ in range(3)]
    cache.clear()
    assert codes == [202, 202, 429]
    assert Job.objects.count() == 2


def _rest_settings() -> dict:
    from django.conf import settings

    return dict(settings.REST_FRAMEWORK)


@pytest.fixture
def view_only_staff(django_user_model):
    user = django_user_model.objects.create_user(username="viewer", password="viewer-pass-123", is_staff=True)
    names = ["view_schedule", "view_failure", "change_schedule", "view_success", "view_ormq"]
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="django_q", codename__in=names))
    return user


def test_view_only_staff_can_neither_resubmit_failures_nor_edit_schedules(client, view_only_staff):
    client.force_login(view_only_staff)
    failure = Failure.objects.create(
        id="a" * 32, name="boom", func="jobs.runner.run_job", started="2026-01-01T00:00Z",
        stopped="2026-01-01T00:00Z", success=False, result="boom",
    )
    schedule = Schedule.objects.get(name="jobs.purge_expired")
    assert client.get("/admin/django_q/failure/").status_code == 403
    assert client.get("/admin/django_q/schedule/").status_code == 403
    response = client.post(
        "/admin/django_q/failure/", {"action": "retry_failed", "_selected_action": [failure.pk]}
    )
    assert response.status_code == 403
    response = client.post(
        f"/admin/django_q/schedule/{schedule.pk}/change/",
        {"name": schedule.name, "func": "os.system", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )
    assert response.status_code == 403
    assert Schedule.objects.get(pk=schedule.pk).func == "jobs.maintenance.purge_expired_task"
    assert Failure.objects.filter(pk=failure.pk).exists()


def test_superusers_still_see_django_q_pages(admin_client):
    assert admin_client.get("/admin/django_q/failure/").status_code == 200
    assert admin_client.get("/admin/django_q/schedule/").status_code == 200


def test_the_login_endpoint_survives_deeply_nested_json(client):
    response = client.generic("POST", "/api/auth/token/", "[" * 50_000, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["detail"]


def test_a_database_outage_is_a_json_503_with_retry_after(api, monkeypatch):
    from django.db import OperationalError

    from jobs.api import views

    def down(**kwargs):
        raise OperationalError("the database system is shutting down")

    monkeypatch.setattr(views, "job_list_for_owner", down)
    response = api.get("/api/jobs/")
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"
    assert response["Retry-After"] == "5"
