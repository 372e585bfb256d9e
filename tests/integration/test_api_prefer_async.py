"""Job-capable endpoints (``@runs_as_job``): the same action inline, as a job, or waited for.

The sales report is inline unless asked (``Prefer: respond-async`` or
``X-Job-Flag: ON``); the purchase is always a job. ``ModeView`` below is a
test-only job-capable action, reachable under ``@pytest.mark.urls(__name__)``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.urls import include, path
from django.utils import timezone
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import JobError, queue
from jobs.api.actions import runs_as_job
from jobs.models import Job, JobStatus
from jobs.runner import run_job
from purchases.models import Order, OrderLine
from tests.integration.api_helpers import job_url, post_json, purchase_body

REPORT = "/api/reports/sales/"
PURCHASE = "/api/purchases/"
MODE_KIND = "tests.api_mode"


# --- A test-only job-capable action -------------------------------------------


class ModeSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(["ok", "refuse", "job_error", "not_found"])


class ModeView(APIView):
    """Answers as ``mode`` says: 201, a 409 refusal, a JobError or a 404."""

    @runs_as_job(kind=MODE_KIND, input=ModeSerializer, timeout=5, max_attempts=1)
    def post(self, request, flavour):
        mode = request.data["mode"]
        if mode == "refuse":
            return Response({"detail": "Not today.", "code": "not_today"}, status=409)
        if mode == "job_error":
            raise JobError("out_of_luck", "No luck today.")
        if mode == "not_found":
            raise NotFound()
        seen = {"flavour": flavour, "query": request.query_params.dict(), "user": request.user.username}
        return Response(seen, status=201)


urlpatterns = [
    path("api/", include("jobs.api.urls")),
    path("api/modes/<str:flavour>/", ModeView.as_view()),
]


# --- Fixtures and helpers -----------------------------------------------------


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The users' passwords are never checked here; the default hasher costs a second each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def add_order(owner, status, lines, *, days_ago=0):
    """An order of ``owner`` with ``lines`` of (product, quantity, unit price), ``days_ago`` old."""
    order = Order.objects.create(owner=owner, status=status, currency="EUR")
    for product, quantity, unit_price in lines:
        OrderLine.objects.create(order=order, product=product, quantity=quantity, unit_price=unit_price)
    if days_ago:
        Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(days=days_ago))
    return order


@pytest.fixture
def sales(user, other_user, make_product):
    """Alice's paid orders (two counted, one too old), a reserved one, and Bob's paid order."""
    keyboard = make_product(name="Keyboard", price=Decimal("10.00"))
    mouse = make_product(name="Mouse", price=Decimal("25.00"))
    screen = make_product(name="Screen", price=Decimal("200.00"))
    add_order(user, "paid", [(keyboard, 2, Decimal("10.00")), (mouse, 1, Decimal("25.00"))])
    add_order(user, "paid", [(keyboard, 3, Decimal("9.50"))], days_ago=3)
    add_order(user, "paid", [(screen, 1, Decimal("200.00"))], days_ago=90)
    add_order(user, "reserved", [(mouse, 5, Decimal("25.00"))])
    add_order(other_user, "paid", [(keyboard, 7, Decimal("10.00")), (screen, 4, Decimal("200.00"))])
    return {"keyboard": keyboard, "mouse": mouse, "screen": screen}


@pytest.fixture
def post(api, django_capture_on_commit_callbacks):
    def send(url, body, **headers):
        return post_json(api, url, body, django_capture_on_commit_callbacks, **headers)

    return send


@pytest.fixture
def threaded_worker(monkeypatch):
    """Run each enqueued job at once on a thread of its own, as a worker process would."""
    threads: list[threading.Thread] = []

    def work(job_id):
        try:
            run_job(str(job_id))
        finally:
            connection.close()

    def enqueue(job_id, kind, **_):
        thread = threading.Thread(target=work, args=(job_id,), daemon=True)
        thread.start()
        threads.append(thread)
        return "thread-task"

    monkeypatch.setattr(queue, "enqueue", enqueue)
    yield threads
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)


def run_queued(fake_queue) -> list[str]:
    """Run every recorded job as the worker would; return their outcomes."""
    return [run_job(job_id) for job_id in fake_queue.job_ids]


def report_line(product, *, quantity: int, total: str) -> dict[str, object]:
    return {"product_id": product.pk, "sku": product.sku, "name": product.name, "quantity": quantity, "total": total}


def last_days(days: int) -> dict[str, str]:
    today = timezone.localdate()
    return {"date_from": str(today - timedelta(days=days - 1)), "date_to": str(today)}


# --- Inline and as a job, the same answer ----------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("days", [None, 7], ids=["default-range", "explicit-range"])
def test_report_inline_and_as_job_give_the_same_body(post, api, sales, fake_queue, days):
    body = {} if days is None else last_days(days)
    inline = post(REPORT, body)
    assert inline.status_code == 200, inline.content
    report = inline.json()
    assert report["orders"] == 2
    assert report["currency"] == "EUR"
    # Alice's two recent paid orders only: not the old one, the reserved one, or Bob's.
    assert report["products"] == [
        report_line(sales["keyboard"], quantity=5, total="48.50"),
        report_line(sales["mouse"], quantity=1, total="25.00"),
    ]
    assert report["total"] == "73.50"
    assert not Job.objects.exists()

    accepted = post(REPORT, body, HTTP_PREFER="respond-async")
    assert accepted.status_code == 202
    assert run_queued(fake_queue) == [JobStatus.COMPLETED]
    job = Job.objects.get()
    assert job.result == report
    assert job.result_status == 200
    polled = api.get(job_url(job.pk)).json()
    assert (polled["status"], polled["result"], polled["result_status"]) == ("completed", report, 200)


@pytest.mark.django_db
def test_job_stores_validated_data_and_the_call(post, user, sales):
    body = last_days(7)
    response = post(REPORT + "?note=x&note=y", body, HTTP_PREFER="respond-async")
    assert response.status_code == 202
    job = Job.objects.get()
    assert job.owner == user
    assert job.kind == "purchases.sales_report"
    assert job.payload == body
    assert job.call["method"] == "POST"
    assert job.call["path"] == REPORT
    assert job.call["query"] == "note=x&note=y"
    assert job.call["kwargs"] == {}
    assert job.call["host"] == "testserver"


@pytest.mark.django_db
def test_default_range_is_fixed_when_the_job_is_submitted(post, sales):
    post(REPORT, {}, HTTP_PREFER="respond-async")
    assert Job.objects.get().payload == last_days(30)


# --- Prefer: respond-async, wait=N -------------------------------------------


# Committed rows: the job runs on the threaded worker's own connection.
@pytest.mark.django_db(transaction=True)
def test_wait_answers_inline_when_the_job_finishes_in_time(api, sales, settings, threaded_worker):
    # The report takes 0.4 s on the worker thread: the request must wait for it.
    settings.PURCHASES = {**settings.PURCHASES, "REPORT_DELAY": 0.4}
    expected = api.post(REPORT, {}, format="json").json()
    started = time.monotonic()
    response = api.post(REPORT, {}, format="json", HTTP_PREFER="respond-async, wait=5")
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.content
    assert response.json() == expected
    assert 0.35 <= elapsed < 4
    assert "Preference-Applied" not in response
    assert "Location" not in response
    assert "Prefer" in response["Vary"]
    job = Job.objects.get()
    assert (job.status, job.result, job.result_status) == (JobStatus.COMPLETED, expected, 200)
    assert len(threaded_worker) == 1


@pytest.mark.django_db
def test_wait_answers_202_at_the_deadline_when_the_job_is_not_done(api, sales):
    started = time.monotonic()
    response = api.post(REPORT, {}, format="json", HTTP_PREFER="respond-async, wait=1")
    elapsed = time.monotonic() - started
    assert response.status_code == 202
    assert 0.9 <= elapsed < 3
    assert response.json()["status"] == "pending"
    assert response["Preference-Applied"] == "respond-async"
    assert response["Location"] == job_url(Job.objects.get().pk)


@pytest.mark.django_db
def test_wait_is_capped_by_prefer_wait_max(api, sales, settings):
    settings.JOBS = {**settings.JOBS, "PREFER_WAIT_MAX": 1}
    started = time.monotonic()
    response = api.post(REPORT, {}, format="json", HTTP_PREFER="respond-async, wait=60")
    assert response.status_code == 202
    assert 0.9 <= time.monotonic() - started < 3


# Committed rows: the job runs on the threaded worker's own connection.
@pytest.mark.django_db(transaction=True)
def test_purchase_with_wait_answers_201_and_the_order(api, make_product, threaded_worker):
    product = make_product(stock=5, price=Decimal("12.00"))
    body = purchase_body(product.pk, 2)
    response = api.post(PURCHASE, body, format="json", HTTP_PREFER="respond-async, wait=5")
    assert response.status_code == 201, response.content
    order = Order.objects.get()
    assert response.json()["order_id"] == order.pk
    assert response.json()["total"] == "24.00"
    assert order.status == "paid"
    product.refresh_from_db()
    assert product.stock == 3


# --- Validation: nothing is created ------------------------------------------

SHAPES = {
    "inline": {},
    "prefer": {"HTTP_PREFER": "respond-async"},
    "x-job-flag": {"HTTP_X_JOB_FLAG": "ON"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "body, field",
    [
        ({"date_from": "2024-02-30"}, "date_from"),
        ({"date_to": "yesterday"}, "date_to"),
        ({"date_from": "2024-03-02", "date_to": "2024-03-01"}, "date_from"),
        ({"since": "2024-03-01"}, "since"),
    ],
    ids=["impossible-date", "not-a-date", "reversed-range", "unknown-field"],
)
def test_bad_report_body_is_400_and_creates_no_job(post, fake_queue, shape, body, field):
    response = post(REPORT, body, **SHAPES[shape])
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Job.objects.exists()
    assert fake_queue.enqueued == []


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("key", ["", "x" * 256, "bad\x01key"], ids=["empty", "too-long", "control-char"])
def test_malformed_idempotency_key_is_400_in_every_shape(post, fake_queue, shape, key):
    response = post(REPORT, {}, HTTP_IDEMPOTENCY_KEY=key, **SHAPES[shape])
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_idempotency_key_replays_the_job_and_is_ignored_inline(post, sales):
    first = post(REPORT, {}, HTTP_PREFER="respond-async", HTTP_IDEMPOTENCY_KEY="report-1")
    again = post(REPORT, {}, HTTP_PREFER="respond-async", HTTP_IDEMPOTENCY_KEY="report-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again["Idempotent-Replayed"] == "true"
    inline = post(REPORT, {}, HTTP_IDEMPOTENCY_KEY="report-1")
    assert inline.status_code == 200
    assert Job.objects.count() == 1


# --- Headers and preferences ------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_PREFER": "respond-async"},
        {"HTTP_PREFER": "handling=lenient, Respond-Async; foo=bar, return=minimal"},
        {"HTTP_X_JOB_FLAG": "ON"},
        {"HTTP_X_JOB_FLAG": " on "},
    ],
    ids=["prefer", "prefer-among-unknown-tokens", "x-job-flag", "x-job-flag-lowercase"],
)
def test_a_job_answers_202_with_its_headers(post, fake_queue, headers):
    response = post(REPORT, {}, **headers)
    assert response.status_code == 202, response.content
    job = Job.objects.get()
    assert response.json()["id"] == str(job.pk)
    assert response["Location"] == job_url(job.pk)
    assert int(response["Retry-After"]) >= 1
    assert response["X-Job-Flag"] == "ON"
    assert "Prefer" in response["Vary"] and "X-Job-Flag" in response["Vary"]
    assert fake_queue.job_ids == [str(job.pk)]
    if "HTTP_PREFER" in headers:
        assert response["Preference-Applied"] == "respond-async"
    else:
        # RFC 7240: Preference-Applied reports preferences the client sent in Prefer.
        assert "Preference-Applied" not in response


@pytest.mark.django_db
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_PREFER": "return=minimal, handling=strict"},
        {"HTTP_PREFER": "respond-async-later"},
        {"HTTP_PREFER": "wait=5"},
        {"HTTP_X_JOB_FLAG": "OFF"},
        {"HTTP_X_JOB_FLAG": "1"},
    ],
    ids=["unknown-tokens", "longer-token", "wait-alone", "flag-off", "flag-one"],
)
def test_without_respond_async_the_report_runs_inline(post, sales, headers):
    started = time.monotonic()
    response = post(REPORT, {}, **headers)
    assert response.status_code == 200, response.content
    assert response.json()["orders"] == 2
    assert time.monotonic() - started < 2
    assert "Preference-Applied" not in response and "X-Job-Flag" not in response
    assert not Job.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("wait", ["abc", "-1", "1.5", '"soon"', "", "\u00b2"])
def test_malformed_wait_is_ignored(post, wait):
    started = time.monotonic()
    response = post(REPORT, {}, HTTP_PREFER=f"respond-async, wait={wait}")
    assert response.status_code == 202
    assert time.monotonic() - started < 0.9
    assert response["Preference-Applied"] == "respond-async"


# --- The purchase: always a job ---------------------------------------------


@pytest.mark.django_db
def test_purchase_is_always_a_job_whose_result_is_the_201_answer(post, api, make_product, fake_queue):
    product = make_product(stock=5, price=Decimal("12.00"))
    response = post(PURCHASE, purchase_body(product.pk, 2))
    assert response.status_code == 202
    assert response["X-Job-Flag"] == "ON"
    assert "Preference-Applied" not in response
    assert run_queued(fake_queue) == [JobStatus.COMPLETED]
    job = Job.objects.get()
    order = Order.objects.get()
    assert job.result_status == 201
    assert job.result["order_id"] == order.pk
    assert job.result["total"] == "24.00"
    assert job.result["lines"][0]["product_id"] == product.pk
    assert api.get(f"/api/orders/{order.pk}/").json()["job_id"] == str(job.pk)


# --- An action that refuses in the worker -------------------------------------


@pytest.mark.django_db
def test_report_whose_payload_no_longer_validates_fails_with_the_400_body(post, fake_queue):
    post(REPORT, {}, HTTP_PREFER="respond-async")
    Job.objects.update(payload={"date_from": "someday"})
    assert run_queued(fake_queue) == [JobStatus.FAILED]
    job = Job.objects.get()
    assert job.result_status == 400
    assert list(job.result) == ["date_from"]
    assert job.error["code"] == "http_400"
    assert "result" in job.error["message"]


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_test_view_runs_in_the_worker_with_url_kwargs_query_and_user(post, fake_queue):
    response = post("/api/modes/blue/?size=big", {"mode": "ok"}, HTTP_PREFER="respond-async")
    assert response.status_code == 202
    assert run_queued(fake_queue) == [JobStatus.COMPLETED]
    job = Job.objects.get()
    assert job.call["kwargs"] == {"flavour": "blue"}
    assert job.result_status == 201
    assert job.result == {"flavour": "blue", "query": {"size": "big"}, "user": "alice"}


@pytest.mark.urls(__name__)
@pytest.mark.django_db
@pytest.mark.parametrize(
    "mode, status, error",
    [
        ("refuse", 409, {"code": "not_today", "message": "Not today."}),
        # API 404s carry code "not_found" (issue 11, defect 11): the job reports it.
        ("not_found", 404, {"code": "not_found", "message": "Not found."}),
    ],
)
def test_refusal_in_the_worker_fails_the_job_and_keeps_the_body(post, fake_queue, mode, status, error):
    inline = post("/api/modes/red/", {"mode": mode})
    assert inline.status_code == status
    post("/api/modes/red/", {"mode": mode}, HTTP_X_JOB_FLAG="ON")
    assert run_queued(fake_queue) == [JobStatus.FAILED]
    job = Job.objects.get()
    assert job.error == error
    assert (job.result_status, job.result) == (status, inline.json())


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_job_error_is_422_inline_and_a_failed_job_in_the_worker(post, fake_queue):
    inline = post("/api/modes/red/", {"mode": "job_error"})
    assert inline.status_code == 422
    assert inline.json() == {"detail": "No luck today.", "code": "out_of_luck"}
    post("/api/modes/red/", {"mode": "job_error"}, HTTP_PREFER="respond-async")
    assert run_queued(fake_queue) == [JobStatus.FAILED]
    job = Job.objects.get()
    assert job.error == {"code": "out_of_luck", "message": "No luck today."}
    assert job.result is None


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_test_view_validates_with_its_input_serializer(post, fake_queue):
    response = post("/api/modes/red/", {"mode": "sideways"}, HTTP_PREFER="respond-async")
    assert response.status_code == 400
    assert "mode" in json.loads(response.content)
    assert not Job.objects.exists()
